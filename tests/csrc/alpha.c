/* libalpha.so.1: DT_NEEDED libbeta.so.1 (which needs libgamma.so.1). */
int beta_value(void);

int alpha_value(void) { return beta_value() + 1; }
