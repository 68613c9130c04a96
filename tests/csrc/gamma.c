/* End of the dependency chain: libgamma.so.1 needs only libc. */
int gamma_value(void) { return 3; }
