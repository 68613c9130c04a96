/* libbeta.so.1: DT_NEEDED libgamma.so.1. */
int gamma_value(void);

int beta_value(void) { return 2 * gamma_value(); }
