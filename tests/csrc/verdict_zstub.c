/* libz.so.1 stand-in: exports two zlib internals that policies blacklist (_tr_init,
 * _tr_align) in an old node, and zstub_new in ZLIB_1.2.9 (see verdict_zstub.map). */
int _tr_init(void) { return 1; }
int _tr_align(void) { return 2; }
int zstub_new(void) { return 3; }
