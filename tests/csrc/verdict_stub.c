/* A library that only needs to exist under some soname (e.g. libpython3.11.so.1.0). */
int verdict_stub_value(void) { return 7; }
