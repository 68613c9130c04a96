/* _usestub: an extension with DT_NEEDED on a stub library (e.g. libpython). */
int verdict_stub_value(void);

__attribute__((visibility("default"))) void *PyInit__usestub(void) {
  return (void *)(long)verdict_stub_value();
}
