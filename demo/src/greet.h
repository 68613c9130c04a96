#ifndef GREET_H
#define GREET_H
int greet_format(char *buf, unsigned long size, const char *name);
#endif
