/* _blk: imports the blacklisted _tr_init from libz.so.1 (strong: it counts) and
 * _tr_align as a WEAK undefined symbol (may be absent at run time: it must not count). */
int _tr_init(void);
extern int _tr_align(void) __attribute__((weak));

__attribute__((visibility("default"))) void *PyInit__blk(void) {
  int value = _tr_init();
  if (_tr_align) {
    value += _tr_align();
  }
  return (void *)(long)value;
}
