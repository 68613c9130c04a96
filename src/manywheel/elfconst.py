"""Numeric constants of the ELF format that manywheel reads.

Values come from the System V gABI (header, program headers, dynamic tags, symbol
binding/type), the LSB "Symbol Versioning" chapter (DT_VER*, VER_FLG_*), the GNU
extensions (DT_GNU_HASH, PT_GNU_PROPERTY, NT_GNU_PROPERTY_TYPE_0) and the processor
supplements (e_machine values, ARM e_flags, x86 ISA property).
"""

from __future__ import annotations

from typing import Final

# e_ident (gABI "ELF Identification")
ELF_MAGIC: Final = b"\x7fELF"
EI_NIDENT: Final = 16
ELFCLASS32: Final = 1
ELFCLASS64: Final = 2
ELFDATA2LSB: Final = 1
ELFDATA2MSB: Final = 2
EV_CURRENT: Final = 1

# e_type
ET_NONE: Final = 0
ET_REL: Final = 1
ET_EXEC: Final = 2
ET_DYN: Final = 3
ET_CORE: Final = 4

# e_machine (gABI registry)
EM_386: Final = 3
EM_PPC64: Final = 21
EM_S390: Final = 22
EM_ARM: Final = 40
EM_X86_64: Final = 62
EM_AARCH64: Final = 183
EM_RISCV: Final = 243
EM_LOONGARCH: Final = 258

# ARM e_flags (ARM ELF ABI, "ELF header")
EF_ARM_EABIMASK: Final = 0xFF000000
EF_ARM_EABI_VER5: Final = 0x05000000
EF_ARM_ABI_FLOAT_SOFT: Final = 0x200
EF_ARM_ABI_FLOAT_HARD: Final = 0x400

# RISC-V e_flags (RISC-V psABI): the float ABI; Linux wheels use lp64d (double)
EF_RISCV_FLOAT_ABI: Final = 0x6
EF_RISCV_FLOAT_ABI_DOUBLE: Final = 0x4

# e_phnum escape: the real count is in sh_info of section header 0 (gABI "Sections")
PN_XNUM: Final = 0xFFFF

# p_type (gABI "Program Header", GNU extensions)
PT_NULL: Final = 0
PT_LOAD: Final = 1
PT_DYNAMIC: Final = 2
PT_INTERP: Final = 3
PT_NOTE: Final = 4
PT_PHDR: Final = 6
PT_GNU_PROPERTY: Final = 0x6474E553

# d_tag (gABI "Dynamic Section", LSB, GNU)
DT_NULL: Final = 0
DT_NEEDED: Final = 1
DT_PLTRELSZ: Final = 2
DT_PLTGOT: Final = 3
DT_HASH: Final = 4
DT_STRTAB: Final = 5
DT_SYMTAB: Final = 6
DT_RELA: Final = 7
DT_RELASZ: Final = 8
DT_RELAENT: Final = 9
DT_STRSZ: Final = 10
DT_SYMENT: Final = 11
DT_INIT: Final = 12
DT_FINI: Final = 13
DT_SONAME: Final = 14
DT_RPATH: Final = 15
DT_REL: Final = 17
DT_RELSZ: Final = 18
DT_RELENT: Final = 19
DT_PLTREL: Final = 20
DT_JMPREL: Final = 23
DT_INIT_ARRAY: Final = 25
DT_FINI_ARRAY: Final = 26
DT_RUNPATH: Final = 29
DT_FLAGS: Final = 30
DT_PREINIT_ARRAY: Final = 32
DT_GNU_HASH: Final = 0x6FFFFEF5
DT_VERSYM: Final = 0x6FFFFFF0
DT_FLAGS_1: Final = 0x6FFFFFFB
DT_VERDEF: Final = 0x6FFFFFFC
DT_VERDEFNUM: Final = 0x6FFFFFFD
DT_VERNEED: Final = 0x6FFFFFFE
DT_VERNEEDNUM: Final = 0x6FFFFFFF

# Symbol table (gABI "Symbol Table")
SHN_UNDEF: Final = 0
STB_NAMES: Final = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK", 10: "UNIQUE"}  # 10: STB_GNU_UNIQUE
STT_NAMES: Final = {
    0: "NOTYPE",
    1: "OBJECT",
    2: "FUNC",
    3: "SECTION",
    4: "FILE",
    5: "COMMON",
    6: "TLS",
    10: "IFUNC",  # STT_GNU_IFUNC
}

# Symbol versioning (LSB "Symbol Versioning")
VER_NDX_LOCAL: Final = 0
VER_NDX_GLOBAL: Final = 1
VERSYM_HIDDEN: Final = 0x8000
VERSYM_INDEX_MASK: Final = 0x7FFF
VER_FLG_BASE: Final = 0x1
VER_FLG_WEAK: Final = 0x2
VER_NEED_CURRENT: Final = 1
VER_DEF_CURRENT: Final = 1

# GNU property notes (Linux gABI extension; x86-64 psABI "ISA level")
NT_GNU_PROPERTY_TYPE_0: Final = 5
GNU_PROPERTY_X86_ISA_1_NEEDED: Final = 0xC0008002
X86_ISA_LEVELS: Final = ("baseline", "v2", "v3", "v4")  # bit i of ISA_1_NEEDED
