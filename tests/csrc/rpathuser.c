/* rpath_user / runpath_user: find libalpha.so.1 through $ORIGIN/../chain. */
int alpha_value(void);

int path_user_value(void) { return alpha_value(); }
