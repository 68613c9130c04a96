/* static_hello: a fully static executable (no PT_INTERP, no PT_DYNAMIC). */
#include <stdio.h>

int main(void) {
  puts("static");
  return 0;
}
