/* libweak.so: a weak undefined symbol, called only when something provides it. */
extern void maybe_there(void) __attribute__((weak));

int call_if_present(void) {
  if (maybe_there) {
    maybe_there();
    return 1;
  }
  return 0;
}
