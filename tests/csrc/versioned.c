/* libversioned.so.1: one function exported in two versions (see versioned.map).
 * Old binaries bound to vers_func@VERS_1.0 keep the old behaviour; new links get
 * the default vers_func@@VERS_2.0. */
__asm__(".symver vers_func_v1, vers_func@VERS_1.0");
__asm__(".symver vers_func_v2, vers_func@@VERS_2.0");

int vers_func_v1(void) { return 1; }
int vers_func_v2(void) { return 2; }
int vers_other(void) { return 10; }
int vers_new(void) { return 20; }
