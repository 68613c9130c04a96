/* _zver: imports zstub_new@ZLIB_1.2.9 from libz.so.1 (a node under the ZLIB policy
 * prefix that old policies do not list). */
int zstub_new(void);

__attribute__((visibility("default"))) void *PyInit__zver(void) {
  return (void *)(long)zstub_new();
}
