/* hello: an executable linking libalpha.so.1; prints 7 (= 2 * 3 + 1). */
#include <stdio.h>

int alpha_value(void);

int main(void) {
  printf("%d\n", alpha_value());
  return 0;
}
