/* _plain: the smallest extension module shape (a stand-in PyInit__plain, no Python.h).
 * Needs nothing but libc, so any verdict against it comes from how it is linked
 * (-z x86-64-v3, DT_NEEDED libpython) or where it sits in the wheel. */
__attribute__((visibility("default"))) void *PyInit__plain(void) { return (void *)0; }
