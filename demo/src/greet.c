/* libgreet: a small "non-system" library the demo extension links against. */
#include "greet.h"

#include <stdio.h>

int greet_format(char *buf, unsigned long size, const char *name)
{
    return snprintf(buf, size, "hello, %s, from libgreet", name);
}
