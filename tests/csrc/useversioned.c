/* libuseversioned.so: links libversioned.so.1, so it needs VERS_2.0 (verneed). */
int vers_func(void);
int vers_new(void);
int vers_other(void);

int use_versioned(void) { return vers_func() + vers_new() + vers_other(); }
