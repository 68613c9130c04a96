/* _newsym: imports arc4random, which glibc only has since GLIBC_2.36, so the module
 * satisfies manylinux_2_36 and nothing more compatible. */
#include <stdlib.h>

__attribute__((visibility("default"))) void *PyInit__newsym(void) {
  return (void *)(unsigned long)arc4random();
}
