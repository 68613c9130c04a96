/* libtwoneeds.so: needs versions from two libraries (libversioned.so.1 and libc),
 * so its version-needs table has two Verneed entries to chain. */
#include <stdio.h>

int vers_func(void);

int two_needs(void) { return printf("%d\n", vers_func()); }
