/* libisa.so: linked with -z x86-64-v3, so it carries GNU_PROPERTY_X86_ISA_1_NEEDED. */
int isa_value(int x) { return x * 3; }
