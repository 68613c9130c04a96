"""Lazy ELF reader: the facts of one ELF file, read from a path or a buffer.

Everything comes from the program headers and the dynamic segment, never from section
headers, because the loader itself never looks at sections: a file stripped of its
section header table (``e_shoff = e_shnum = 0``) gives the same facts. Each property
reads only the byte ranges it needs (through a :class:`ByteSource`), once.

Hostile input is expected: every offset, size and count read from the file is checked
against the file size before it is used to read, loop or allocate, and every problem is
reported as :class:`ElfError` naming the file, the structure and the file offset.

Names (symbols, libraries, versions, paths) are decoded as UTF-8 with
``errors="surrogateescape"``: valid UTF-8 reads naturally and any other byte maps to a
lone surrogate, so the exact bytes are always recoverable with :func:`name_bytes` (the
patcher needs them). pyelftools decodes section string tables as UTF-8 with
``errors="replace"``; ``name_bytes(n).decode("utf-8", "replace")`` gives its value.

References: System V gABI (ELF header, program headers, dynamic section, hash table),
the LSB symbol-versioning chapter (.gnu.version, .gnu.version_r, .gnu.version_d), the
GNU hash table as implemented by binutils/glibc, and the x86-64 psABI (GNU property
notes, ISA level).

This module is the parser. Where the bytes come from (:class:`ByteSource` and the
sources) is :mod:`manywheel.elfsource`; what the facts are (:class:`ElfFacts` and its
parts) is :mod:`manywheel.elffacts`. Both are re-exported here, so every name callers
import from ``manywheel.elf`` still resolves.
"""

from __future__ import annotations

import gc
import os
import struct
import sys
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from itertools import compress, repeat
from operator import add, not_
from typing import NamedTuple, TypeVar

from manywheel import elfconst as C

# Re-exported (see __all__): callers import these from manywheel.elf.
from manywheel.elffacts import (
    EXPORT_PREFIX,
    DynamicInfo,
    ElfFacts,
    ElfHeader,
    ProgramHeader,
    Symbol,
    SymbolScope,
    VersionDef,
    VersionNeed,
    VersionNeedAux,
)
from manywheel.elfsource import BufferSource, ByteSource, _MappedSource
from manywheel.errors import ElfError

__all__ = [
    "BufferSource",
    "ByteSource",
    "DynamicInfo",
    "ElfError",
    "ElfFacts",
    "ElfFile",
    "ElfHeader",
    "ProgramHeader",
    "Symbol",
    "SymbolScope",
    "VersionDef",
    "VersionNeed",
    "VersionNeedAux",
    "name_bytes",
    "read_facts",
]

_T = TypeVar("_T")

NAME_ENCODING = "utf-8"
NAME_ERRORS = "surrogateescape"


def name_bytes(name: str) -> bytes:
    """The exact bytes a name had in the file (inverse of the reader's decode rule)."""
    return name.encode(NAME_ENCODING, NAME_ERRORS)


def _decode(raw: bytes) -> str:
    return raw.decode(NAME_ENCODING, NAME_ERRORS)


# ---------------------------------------------------------------------------
# Layout: struct formats per class and byte order


class _Layout:
    """Struct formats of one ELF class and byte order (gABI data representation)."""

    def __init__(self, elf_class: int, byte_order: str) -> None:
        bo = "<" if byte_order == "little" else ">"
        self.bits = elf_class
        self.bo = bo
        self.byte_order = byte_order
        self.little = byte_order == "little"
        self.swap = byte_order != sys.byteorder
        self.u32 = struct.Struct(bo + "I")
        self.note = struct.Struct(bo + "III")
        self.verneed = struct.Struct(bo + "HHIII")  # version cnt file aux next
        self.vernaux = struct.Struct(bo + "IHHII")  # hash flags other name next
        self.verdef = struct.Struct(bo + "HHHHIII")  # version flags ndx cnt hash aux next
        self.verdaux = struct.Struct(bo + "II")  # name next
        self.gnu_hash = struct.Struct(bo + "IIII")  # nbuckets symoffset bloom_size shift
        self.property = struct.Struct(bo + "II")  # pr_type pr_datasz
        if elf_class == 64:
            # e_type .. e_shstrndx, after e_ident
            self.ehdr = struct.Struct(bo + "HHIQQQIHHHHHH")
            # p_type p_flags p_offset p_vaddr (p_paddr) p_filesz p_memsz p_align
            self.phdr = struct.Struct(bo + "IIQQ8xQQQ")
            self.dyn = struct.Struct(bo + "qQ")
            self.sym_size = 24
            self.sh_info_at = 44  # offset of sh_info in a section header
            self.word = 8
        else:
            self.ehdr = struct.Struct(bo + "HHIIIIIHHHHHH")
            # p_type p_offset p_vaddr (p_paddr) p_filesz p_memsz p_flags p_align
            self.phdr = struct.Struct(bo + "IIIxxxxIIII")
            self.dyn = struct.Struct(bo + "iI")
            self.sym_size = 16
            self.sh_info_at = 28
            self.word = 4
        self.ehdr_size = C.EI_NIDENT + self.ehdr.size

    def program_header(self, raw: tuple[int, ...]) -> ProgramHeader:
        """Build a ProgramHeader from one unpacked entry (field order differs by class)."""
        if self.bits == 64:
            p_type, flags, offset, vaddr, filesz, memsz, align = raw
        else:
            p_type, offset, vaddr, filesz, memsz, flags, align = raw
        return ProgramHeader(p_type, flags, offset, vaddr, filesz, memsz, align)

    def words(self, data: bytes | memoryview, code: str) -> array[int]:
        """Unpack a table of unsigned integers of one width into native order, in C."""
        out = array(code)
        out.frombytes(data)
        if self.swap:
            out.byteswap()
        return out


_DYN_CHUNK = 256  # dynamic entries read at a time
_PATH_MAX = 4096  # Linux's limit on PT_INTERP (fs/binfmt_elf.c)
_U32 = "I" if array("I").itemsize == 4 else "L"


def _align_up(value: int, align: int) -> int:
    return -(-value // align) * align


def _sym_strings(table: dict[int, str], prefix: str) -> tuple[str, ...]:
    return tuple(table.get(i, f"{prefix}{i}") for i in range(16))


_BIND_NAMES = _sym_strings(C.STB_NAMES, "STB_")
_TYPE_NAMES = _sym_strings(C.STT_NAMES, "STT_")
# Bytes with the low bit set -> 1, others -> 0: finds the GNU hash chain terminator in C.
_ODD_BYTES = bytes(i & 1 for i in range(256))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building 10^5 acyclic tuples.

    Each allocation burst would otherwise trigger collections that traverse every
    live object (about half the symbol-table time on a 75k-symbol library) and find
    nothing to free: tuples of strings, bools and None cannot form cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# (e_machine, class, little-endian) -> arch, for machines whose flags do not matter
_ARCHES = {
    (C.EM_X86_64, 64, True): "x86_64",
    (C.EM_386, 32, True): "i686",
    (C.EM_AARCH64, 64, True): "aarch64",
    (C.EM_PPC64, 64, True): "ppc64le",
    (C.EM_PPC64, 64, False): "ppc64",
    (C.EM_S390, 64, False): "s390x",
    (C.EM_LOONGARCH, 64, True): "loongarch64",
}


def _arch(elf_class: int, byte_order: str, machine: int, flags: int) -> tuple[str | None, str]:
    """Map (class, byte order, e_machine, e_flags) to a wheel platform arch name."""
    little = byte_order == "little"
    if machine == C.EM_ARM:
        if elf_class != 32 or not little:
            return None, "big-endian or 64-bit EM_ARM is not supported"
        if flags & C.EF_ARM_EABIMASK != C.EF_ARM_EABI_VER5:
            return None, f"ARM EABI version {flags >> 24} is not supported (need EABI5)"
        if not flags & C.EF_ARM_ABI_FLOAT_HARD:
            return None, (
                f"ARM soft-float ABI (e_flags {flags:#x}) is not supported: "
                "armv7l wheels use the hard-float ABI"
            )
        return "armv7l", ""
    if machine == C.EM_RISCV and elf_class == 64 and little:
        if flags & C.EF_RISCV_FLOAT_ABI != C.EF_RISCV_FLOAT_ABI_DOUBLE:
            return None, (
                f"RISC-V float ABI in e_flags {flags:#x} is not lp64d, "
                "the ABI of riscv64 Linux distributions"
            )
        return "riscv64", ""
    arch = _ARCHES.get((machine, elf_class, little))
    if arch is not None:
        return arch, ""
    return None, (
        f"e_machine {machine} in a {elf_class}-bit {byte_order}-endian file "
        "is not a supported architecture"
    )


class _Dynamic(NamedTuple):
    """The raw dynamic segment: every tag's last value, and DT_NEEDED offsets in order."""

    values: dict[int, int]
    needed: tuple[int, ...]
    offset: int  # file offset of the segment, for messages


class _Strtab(NamedTuple):
    """The dynamic string table (DT_STRTAB/DT_STRSZ) and where it lies in the file."""

    data: bytes
    offset: int


class ElfFile:
    """A lazily read ELF file: each property reads only the bytes it needs, once."""

    def __init__(self, source: ByteSource, name: str) -> None:
        self.source = source
        self.name = name
        self._size = source.size
        self._closer: Callable[[], None] | None = None
        self._closed = False

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ElfFile:
        """Map the file at ``path`` (use as a context manager to release the map)."""
        name = os.fsdecode(path)
        source = _MappedSource(name)
        elf = cls(source, name)
        elf._closer = source.close
        return elf

    @classmethod
    def from_buffer(cls, data: bytes | bytearray | memoryview, name: str) -> ElfFile:
        """Read an ELF file already in memory (e.g. a wheel member), without copying."""
        source = BufferSource(data, name)
        elf = cls(source, name)
        elf._closer = source.close
        return elf

    def close(self) -> None:
        """Release the map or buffer; facts computed so far stay available."""
        self._closed = True
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- low level -------------------------------------------------------------

    def _error(self, message: str) -> ElfError:
        """The error to raise for a problem in this file (message names the file)."""
        return ElfError(f"{self.name}: {message}")

    def _read(self, offset: int, length: int, what: str) -> bytes | memoryview:
        """Read ``length`` bytes at ``offset`` after checking the range fits the file."""
        if self._closed:
            raise ValueError(f"{self.name}: read from a closed ElfFile")
        self._check_range(offset, length, what)
        return self.source.read(offset, length)

    def _check_range(self, offset: int, length: int, what: str) -> None:
        if offset < 0 or length < 0 or offset + length > self._size:
            raise self._error(
                f"{what} at offset {offset:#x} ({length} bytes) extends past the end "
                f"of the file ({self._size} bytes)"
            )

    def _extent(self, vaddr: int, what: str) -> tuple[int, int]:
        """Map a virtual address to (file offset, file bytes left in its PT_LOAD).

        gABI: dynamic-section addresses are virtual; the loadable segment whose
        [p_vaddr, p_vaddr + p_filesz) holds the address gives its file offset.
        """
        for ph in self._loads:
            delta = vaddr - ph.vaddr
            if 0 <= delta < ph.filesz:
                return ph.offset + delta, ph.filesz - delta
        raise self._error(f"{what} address {vaddr:#x} is not in the file data of any PT_LOAD")

    def _read_vaddr(self, vaddr: int, length: int, what: str) -> bytes | memoryview:
        """Read ``length`` bytes at a virtual address, within one PT_LOAD's file data."""
        if length == 0:
            return b""
        offset, avail = self._extent(vaddr, what)
        if length > avail:
            raise self._error(
                f"{what} at address {vaddr:#x} (file offset {offset:#x}, {length} bytes) "
                f"runs past the end of its PT_LOAD segment"
            )
        return self._read(offset, length, what)

    # -- header and program headers ---------------------------------------------

    @cached_property
    def _ident(self) -> tuple[int, str, int, int]:
        """(class bits, byte order, osabi, abiversion) from e_ident (gABI)."""
        if self._size < C.EI_NIDENT:
            raise self._error(
                f"not an ELF file: {self._size} bytes, shorter than the "
                f"{C.EI_NIDENT}-byte ELF identification"
            )
        ident = bytes(self._read(0, C.EI_NIDENT, "e_ident"))
        if ident[:4] != C.ELF_MAGIC:
            raise self._error(f"not an ELF file: starts with {ident[:4]!r}, not {C.ELF_MAGIC!r}")
        ei_class, ei_data, ei_version = ident[4], ident[5], ident[6]
        if ei_class not in (C.ELFCLASS32, C.ELFCLASS64):
            raise self._error(f"invalid EI_CLASS {ei_class} at offset 0x4 (expected 1 or 2)")
        if ei_data not in (C.ELFDATA2LSB, C.ELFDATA2MSB):
            raise self._error(f"invalid EI_DATA {ei_data} at offset 0x5 (expected 1 or 2)")
        if ei_version != C.EV_CURRENT:
            raise self._error(f"invalid EI_VERSION {ei_version} at offset 0x6 (expected 1)")
        bits = 32 if ei_class == C.ELFCLASS32 else 64
        order = "little" if ei_data == C.ELFDATA2LSB else "big"
        return bits, order, ident[7], ident[8]

    @cached_property
    def _layout(self) -> _Layout:
        bits, order, _, _ = self._ident
        return _Layout(bits, order)

    @cached_property
    def _ehdr(self) -> tuple[int, ...]:
        """The header fields after e_ident, checked for the sizes the class implies."""
        lay = self._layout
        if self._size < lay.ehdr_size:
            raise self._error(
                f"truncated ELF header: {self._size} bytes, a {lay.bits}-bit header "
                f"needs {lay.ehdr_size}"
            )
        fields = lay.ehdr.unpack(self._read(C.EI_NIDENT, lay.ehdr.size, "ELF header"))
        ehsize = fields[7]
        if ehsize != lay.ehdr_size:
            raise self._error(
                f"e_ehsize is {ehsize} at offset {28 + 3 * lay.word:#x}, "
                f"expected {lay.ehdr_size} for a {lay.bits}-bit file "
                "(wrong EI_CLASS or EI_DATA?)"
            )
        return fields

    @cached_property
    def header(self) -> ElfHeader:
        """The ELF header and the arch it implies (reads the first 52 or 64 bytes)."""
        bits, order, osabi, abiversion = self._ident
        e_type, machine, _version, entry, *_, flags = self._ehdr[:7]
        arch, problem = _arch(bits, order, machine, flags)
        return ElfHeader(
            elf_class=bits,
            byte_order=order,
            machine=machine,
            osabi=osabi,
            abiversion=abiversion,
            elf_type=e_type,
            flags=flags,
            entry=entry,
            arch=arch,
            arch_problem=problem or None,
        )

    def _phnum(self) -> int:
        """e_phnum, or sh_info of section header 0 when it is PN_XNUM (gABI)."""
        _, _, _, _, _, shoff, _, _, _, phnum, shentsize, _, _ = self._ehdr
        if phnum != C.PN_XNUM:
            return phnum
        where = self._layout.sh_info_at
        if shoff == 0 or shentsize < where + 4:
            raise self._error("e_phnum is PN_XNUM but there is no section header 0 with the count")
        raw = self._read(shoff + where, 4, "section header 0 sh_info")
        return int(self._layout.u32.unpack(raw)[0])

    @cached_property
    def program_headers(self) -> tuple[ProgramHeader, ...]:
        """All program headers, bounds-checked against the file before unpacking."""
        lay = self._layout
        phoff, phentsize = self._ehdr[4], self._ehdr[8]
        phnum = self._phnum()
        if phnum == 0:
            return ()
        if phentsize != lay.phdr.size:
            raise self._error(
                f"e_phentsize is {phentsize}, expected {lay.phdr.size} for a {lay.bits}-bit file"
            )
        if phoff == 0 or phoff + phnum * phentsize > self._size:
            raise self._error(
                f"program header table at offset {phoff:#x} ({phnum} entries of "
                f"{phentsize} bytes) does not fit in the file ({self._size} bytes)"
            )
        data = self._read(phoff, phnum * phentsize, "program header table")
        return tuple(map(lay.program_header, lay.phdr.iter_unpack(data)))

    @cached_property
    def _loads(self) -> tuple[ProgramHeader, ...]:
        return tuple(ph for ph in self.program_headers if ph.type == C.PT_LOAD)

    def _segment(self, ph: ProgramHeader, what: str) -> bytes | memoryview:
        return self._read(ph.offset, ph.filesz, what)

    @cached_property
    def interpreter(self) -> str | None:
        """PT_INTERP: the NUL-terminated path of the program interpreter (gABI)."""
        for ph in self.program_headers:
            if ph.type == C.PT_INTERP:
                if ph.filesz > _PATH_MAX:  # Linux refuses to exec such a file
                    raise self._error(
                        f"PT_INTERP at offset {ph.offset:#x} is {ph.filesz} bytes long, "
                        f"more than PATH_MAX ({_PATH_MAX})"
                    )
                raw = bytes(self._segment(ph, "PT_INTERP"))
                end = raw.find(b"\0")
                if end < 0:
                    raise self._error(f"PT_INTERP at offset {ph.offset:#x} is not NUL-terminated")
                return _decode(raw[:end])
        return None

    # -- dynamic segment ------------------------------------------------------

    @cached_property
    def _dyn(self) -> _Dynamic | None:
        """Parse PT_DYNAMIC up to DT_NULL (or its end); None when there is none."""
        ph = next((p for p in self.program_headers if p.type == C.PT_DYNAMIC), None)
        if ph is None:
            return None
        fmt = self._layout.dyn
        count = ph.filesz // fmt.size
        self._check_range(ph.offset, count * fmt.size, "PT_DYNAMIC segment")
        values: dict[int, int] = {}
        needed: list[int] = []
        for first in range(0, count, _DYN_CHUNK):  # read only up to DT_NULL
            n = min(_DYN_CHUNK, count - first)
            data = self._read(ph.offset + first * fmt.size, n * fmt.size, "PT_DYNAMIC segment")
            for tag, val in fmt.iter_unpack(data):
                if tag == C.DT_NULL:
                    return _Dynamic(values, tuple(needed), ph.offset)
                if tag == C.DT_NEEDED:
                    needed.append(val)
                values[tag] = val
        return _Dynamic(values, tuple(needed), ph.offset)

    @cached_property
    def _strtab(self) -> _Strtab:
        """DT_STRTAB/DT_STRSZ, read once as bytes (gABI: both tags are mandatory)."""
        dyn = self._dyn
        assert dyn is not None
        addr = dyn.values.get(C.DT_STRTAB)
        size = dyn.values.get(C.DT_STRSZ)
        if addr is None or size is None:
            raise self._error(
                f"the dynamic segment at offset {dyn.offset:#x} lacks DT_STRTAB or DT_STRSZ"
            )
        offset, _ = self._extent(addr, "DT_STRTAB") if size else (0, 0)
        return _Strtab(bytes(self._read_vaddr(addr, size, "DT_STRTAB string table")), offset)

    def _string(self, index: int, what: str) -> str:
        """The NUL-terminated string at ``index`` of the dynamic string table."""
        tab = self._strtab
        end = tab.data.find(b"\0", index)
        if index >= len(tab.data) or end < 0:
            problem = "outside" if index >= len(tab.data) else "without a NUL terminator in"
            raise self._error(
                f"{what} name at index {index} of the dynamic string table (file offset "
                f"{tab.offset + index:#x}) is {problem} the table ({len(tab.data)} bytes)"
            )
        return _decode(tab.data[index:end])

    @cached_property
    def dynamic(self) -> DynamicInfo | None:
        """DT_NEEDED (in order), DT_SONAME, DT_RPATH, DT_RUNPATH, DT_FLAGS, DT_FLAGS_1."""
        dyn = self._dyn
        if dyn is None:
            return None

        def opt(tag: int, what: str) -> str | None:
            index = dyn.values.get(tag)
            return None if index is None else self._string(index, what)

        return DynamicInfo(
            needed=tuple(self._string(i, "DT_NEEDED") for i in dyn.needed),
            soname=opt(C.DT_SONAME, "DT_SONAME"),
            rpath=opt(C.DT_RPATH, "DT_RPATH"),
            runpath=opt(C.DT_RUNPATH, "DT_RUNPATH"),
            flags=dyn.values.get(C.DT_FLAGS, 0),
            flags_1=dyn.values.get(C.DT_FLAGS_1, 0),
        )

    # -- symbol versioning -------------------------------------------------------

    def _walk_chain(
        self, start: int, count: int | None, what: str, entry: Callable[[int], tuple[_T, int]]
    ) -> list[_T]:
        """Read a versioning chain (LSB: entries linked by relative ``next`` offsets).

        ``entry(address)`` parses one entry and returns it with its ``next``. The walk
        stops after ``count`` entries; ld.so instead stops at ``next == 0``, so the two
        must agree. Revisiting an address is a loop: hostile chains cannot hang or grow.
        """
        items: list[_T] = []
        seen: set[int] = set()
        wrap = (1 << self._layout.bits) - 1  # C pointer arithmetic wraps in 32-bit files
        addr = start
        while count is None or len(items) < count:
            if addr in seen:
                raise self._error(
                    f"{what} chain loops back to address {addr:#x} after {len(items)} entries"
                )
            seen.add(addr)
            item, nxt = entry(addr)
            items.append(item)
            if nxt == 0:
                if count is not None and len(items) < count:
                    raise self._error(
                        f"{what} chain ends at address {addr:#x} after {len(items)} of "
                        f"{count} declared entries"
                    )
                break
            addr = (addr + nxt) & wrap
        return items

    @cached_property
    def version_needs(self) -> tuple[VersionNeed, ...]:
        """DT_VERNEED/DT_VERNEEDNUM: the versions this file needs, per library (LSB)."""
        dyn = self._dyn
        if dyn is None or C.DT_VERNEED not in dyn.values:
            return ()
        count = dyn.values.get(C.DT_VERNEEDNUM)
        return tuple(self._walk_chain(dyn.values[C.DT_VERNEED], count, "Verneed", self._verneed))

    def _verneed(self, addr: int) -> tuple[VersionNeed, int]:
        """One Elf_Verneed (vn_version, vn_cnt, vn_file, vn_aux, vn_next) and its aux list."""
        lay = self._layout
        version, cnt, file_, aux, nxt = lay.verneed.unpack(
            self._read_vaddr(addr, lay.verneed.size, "Verneed entry")
        )
        if version != C.VER_NEED_CURRENT:
            raise self._error(f"Verneed entry at address {addr:#x} has vn_version {version}")
        auxes = self._walk_chain(addr + aux, cnt, "Vernaux", self._vernaux)
        return VersionNeed(self._string(file_, "Verneed file"), tuple(auxes)), nxt

    def _vernaux(self, addr: int) -> tuple[VersionNeedAux, int]:
        """One Elf_Vernaux (vna_hash, vna_flags, vna_other, vna_name, vna_next)."""
        lay = self._layout
        vhash, flags, other, name, nxt = lay.vernaux.unpack(
            self._read_vaddr(addr, lay.vernaux.size, "Vernaux entry")
        )
        return VersionNeedAux(self._string(name, "Vernaux"), vhash, flags, other), nxt

    @cached_property
    def version_defs(self) -> tuple[VersionDef, ...]:
        """DT_VERDEF/DT_VERDEFNUM: the versions this file defines (LSB)."""
        dyn = self._dyn
        if dyn is None or C.DT_VERDEF not in dyn.values:
            return ()
        count = dyn.values.get(C.DT_VERDEFNUM)
        return tuple(self._walk_chain(dyn.values[C.DT_VERDEF], count, "Verdef", self._verdef))

    def _verdef(self, addr: int) -> tuple[VersionDef, int]:
        """One Elf_Verdef (vd_version, vd_flags, vd_ndx, vd_cnt, vd_hash, vd_aux,
        vd_next) with its names from the Verdaux list."""
        lay = self._layout
        version, flags, ndx, cnt, vhash, aux, nxt = lay.verdef.unpack(
            self._read_vaddr(addr, lay.verdef.size, "Verdef entry")
        )
        if version != C.VER_DEF_CURRENT:
            raise self._error(f"Verdef entry at address {addr:#x} has vd_version {version}")
        names = self._walk_chain(addr + aux, cnt, "Verdaux", self._verdaux)
        return VersionDef(ndx, flags, vhash, tuple(names)), nxt

    def _verdaux(self, addr: int) -> tuple[str, int]:
        """One Elf_Verdaux (vda_name, vda_next)."""
        lay = self._layout
        name, nxt = lay.verdaux.unpack(self._read_vaddr(addr, lay.verdaux.size, "Verdaux entry"))
        return self._string(name, "Verdaux"), nxt

    @cached_property
    def _version_index(self) -> dict[int, tuple[str, str | None]]:
        """Version index -> (version name, library or None), for .gnu.version lookups."""
        table: dict[int, tuple[str, str | None]] = {}
        for vdef in self.version_defs:
            if vdef.names and not vdef.flags & C.VER_FLG_BASE:
                table[vdef.index] = (vdef.names[0], None)
        for need in self.version_needs:
            for aux in need.versions:
                table[aux.index & C.VERSYM_INDEX_MASK] = (aux.name, need.file)
        return table

    # -- dynamic symbols ---------------------------------------------------------

    def _symbol_count(self, values: dict[int, int]) -> int:
        """Number of dynamic symbols (symbol 0 included), without section headers.

        DT_HASH's nchain is the count (gABI "Hash Table"). A GNU hash table ends at the
        last hashed symbol, and linkers place every unhashed (undefined) symbol before
        the hashed ones. When no symbol is hashed (a file exporting nothing) or there
        is no hash table, only relocations can refer to symbols: the highest symbol
        index they use bounds the table.
        """
        if C.DT_HASH in values:
            raw = self._read_vaddr(values[C.DT_HASH], 8, "DT_HASH header")
            return int(self._layout.u32.unpack_from(raw, 4)[0])
        floor = 0
        if C.DT_GNU_HASH in values:
            hashed, floor = self._gnu_hash_count(values[C.DT_GNU_HASH])
            if hashed is not None:
                return hashed
        return max(floor, self._relocated_symbol_limit(values))

    def _relocated_symbol_limit(self, values: dict[int, int]) -> int:
        """One more than the highest symbol index used by DT_REL/DT_RELA/DT_JMPREL.

        gABI "Relocation": r_info holds the symbol index in its high 24 (ELF32) or 32
        (ELF64) bits; the column is read with array slicing, in C.
        """
        lay = self._layout
        rela = values.get(C.DT_PLTREL) == C.DT_RELA
        tables = [
            (C.DT_RELA, C.DT_RELASZ, True),
            (C.DT_REL, C.DT_RELSZ, False),
            (C.DT_JMPREL, C.DT_PLTRELSZ, rela),
        ]
        limit = 0
        for addr_tag, size_tag, has_addend in tables:
            if addr_tag not in values or not values.get(size_tag):
                continue
            entsize = lay.word * (3 if has_addend else 2)
            size = values[size_tag] // entsize * entsize
            words = lay.words(self._read_vaddr(values[addr_tag], size, "relocation table"), _U32)
            if lay.bits == 64:  # r_info is the second 8-byte word; the index its high half
                column = words[3 if lay.little else 2 :: entsize // 4]
                limit = max(limit, max(column, default=0) + 1)
            else:  # r_info is the second word; the index is r_info >> 8
                column = words[1 :: entsize // 4]
                limit = max(limit, (max(column, default=0) >> 8) + 1)
        return limit

    def _gnu_hash_count(self, addr: int) -> tuple[int | None, int]:
        """(symbol count or None when no symbol is hashed, symoffset) of a GNU hash table.

        The chain of the highest bucket ends at the last hashed symbol: the first chain
        entry from there with bit 0 set.
        """
        lay = self._layout
        nbuckets, symoffset, bloom_size, _ = lay.gnu_hash.unpack(
            self._read_vaddr(addr, 16, "DT_GNU_HASH header")
        )
        buckets_addr = addr + 16 + bloom_size * lay.word
        _, avail = self._extent(addr, "DT_GNU_HASH")
        if 16 + bloom_size * lay.word + nbuckets * 4 > avail:
            raise self._error(
                f"DT_GNU_HASH table at address {addr:#x} ({nbuckets} buckets, bloom "
                f"size {bloom_size}) runs past the end of its PT_LOAD segment"
            )
        buckets = lay.words(self._read_vaddr(buckets_addr, nbuckets * 4, "GNU hash buckets"), _U32)
        last = max(buckets, default=0)
        if last == 0:
            return None, int(symoffset)
        if last < symoffset:
            raise self._error(f"DT_GNU_HASH bucket value {last} is below symoffset {symoffset}")
        chain_addr = buckets_addr + nbuckets * 4 + (last - symoffset) * 4
        offset, avail = self._extent(chain_addr, "GNU hash chain")
        low = 0 if lay.little else 3  # the byte holding bit 0 of each word
        scanned = 0
        while scanned < avail:
            size = min(avail - scanned, 1 << 14) // 4 * 4
            if size == 0:
                break
            chunk = bytes(self._read(offset + scanned, size, "GNU hash chain"))
            hit = chunk[low::4].translate(_ODD_BYTES).find(1)
            if hit >= 0:
                return last + scanned // 4 + hit + 1, int(symoffset)
            scanned += size
        raise self._error(f"GNU hash chain at address {chain_addr:#x} has no terminating entry")

    @cached_property
    def symbols(self) -> tuple[Symbol, ...]:
        """The dynamic symbols (DT_SYMTAB), without symbol 0, with their versions."""
        return self._symbols(imports_only=False)

    @cached_property
    def imports(self) -> tuple[Symbol, ...]:
        """The symbols of the ``"imports"`` scope (:data:`SymbolScope`), in table order:
        the undefined ones and the defined ones named ``PyInit_*``.

        The other symbols' names are never decoded, but the whole table is checked as
        for :attr:`symbols` (every name inside the string table, every version index
        declared), so both raise the same error on the same file.
        """
        if "symbols" in self.__dict__:  # already decoded
            return tuple(s for s in self.symbols if _in_imports(s))
        return self._symbols(imports_only=True)

    def _symbols(self, imports_only: bool) -> tuple[Symbol, ...]:
        dyn = self._dyn
        if dyn is None or C.DT_SYMTAB not in dyn.values:
            return ()
        values = dyn.values
        lay = self._layout
        syment = values.get(C.DT_SYMENT, lay.sym_size)
        if syment != lay.sym_size:
            raise self._error(
                f"DT_SYMENT is {syment}, expected {lay.sym_size} for a {lay.bits}-bit file"
            )
        count = self._symbol_count(values)
        if count <= 1:
            return ()
        _, avail = self._extent(values[C.DT_SYMTAB], "DT_SYMTAB")
        if count > avail // syment:
            raise self._error(
                f"the dynamic symbol table at address {values[C.DT_SYMTAB]:#x} would hold "
                f"{count} symbols but its PT_LOAD segment has room for {avail // syment}"
            )
        raw = bytes(
            self._read_vaddr(values[C.DT_SYMTAB] + syment, (count - 1) * syment, "DT_SYMTAB")
        )
        versym = self._versym(values, count)
        all_offsets = lay.words(raw, _U32)[0 :: syment // 4]  # st_name: first word
        all_keys = _symbol_keys(raw, versym, 4 if lay.bits == 64 else 12, syment)
        tails = _SymbolTails(self._version_index, lay.byte_order)
        name_offsets: Sequence[int] = all_offsets
        keys: Sequence[int] = all_keys
        self._check_name_offsets(all_offsets)
        if imports_only:
            try:
                for key in dict.fromkeys(all_keys):  # each distinct key once, in table order
                    tails[key]
            except _UnknownVersion as exc:
                raise self._unknown_version(exc.index, versym, all_offsets) from None
            chosen = self._import_indices(raw, all_offsets, 6 if lay.bits == 64 else 14, syment)
            name_offsets = list(map(all_offsets.__getitem__, chosen))
            keys = list(map(all_keys.__getitem__, chosen))
        with _gc_paused():
            names = self._symbol_names(name_offsets)
            # All C-level: (name,) + cached tail, then retyped as Symbol.
            rows = map(add, zip(names), map(tails.__getitem__, keys))
            try:
                return tuple(map(tuple.__new__, repeat(Symbol), rows))
            except _UnknownVersion as exc:
                raise self._unknown_version(exc.index, versym, all_offsets) from None

    def _import_indices(
        self, symtab: bytes, name_offsets: Sequence[int], shndx_at: int, syment: int
    ) -> list[int]:
        """Indices (into ``symtab``) of the undefined symbols and of the defined ones
        whose name starts with ``PyInit_``, ascending; no name is decoded.

        st_shndx == SHN_UNDEF (0) is tested on the raw column, in C: zero in either
        byte order. A ``PyInit_`` name is found by searching the string table for the
        prefix and keeping the symbols whose st_name points at a hit (names may be
        tails of longer strings, so a hit need not follow a NUL).
        """
        column = array("H")
        column.frombytes(symtab)
        shndx = column[shndx_at // 2 :: syment // 2]
        undefined = list(compress(range(len(shndx)), map(not_, shndx)))
        data = self._strtab.data
        prefix = EXPORT_PREFIX.encode("ascii")
        hits: set[int] = set()
        at = data.find(prefix)
        while at >= 0:
            hits.add(at)
            at = data.find(prefix, at + 1)
        if not hits:
            return undefined
        named = compress(range(len(name_offsets)), map(hits.__contains__, name_offsets))
        return sorted({*undefined, *named})

    def _unknown_version(self, index: int, versym: bytes, offsets: Sequence[int]) -> ElfError:
        """Name the first symbol whose .gnu.version entry uses an undeclared index."""
        entries = struct.iter_unpack(self._layout.bo + "H", versym)
        number = [v & C.VERSYM_INDEX_MASK for (v,) in entries].index(index) + 1
        assert self._dyn is not None
        where = self._extent(self._dyn.values[C.DT_VERSYM] + 2 * number, "DT_VERSYM")[0]
        name = self._string(offsets[number - 1], f"symbol {number}")
        return self._error(
            f"symbol {number} ({name!r}) has version index {index} "
            f"(DT_VERSYM entry at file offset {where:#x}), which no version definition "
            "or need declares"
        )

    def _versym(self, values: dict[int, int], count: int) -> bytes:
        """The raw .gnu.version entries of symbols 1..count-1 (all 1 = global if absent)."""
        if C.DT_VERSYM not in values:
            return struct.pack(self._layout.bo + "H", C.VER_NDX_GLOBAL) * (count - 1)
        return bytes(self._read_vaddr(values[C.DT_VERSYM] + 2, (count - 1) * 2, "DT_VERSYM table"))

    def _check_name_offsets(self, offsets: Sequence[int]) -> None:
        """Every name must start before the last NUL of the string table."""
        data = self._strtab.data
        limit = data.rfind(b"\0") + 1
        if offsets and max(offsets) >= limit:
            bad = next(i for i, off in enumerate(offsets) if off >= limit)
            self._string(offsets[bad], f"symbol {bad + 1}")

    def _symbol_names(self, offsets: Sequence[int]) -> list[str]:
        """Decode the names at ``offsets`` (checked by :meth:`_check_name_offsets`): one
        decode of the table when it is ASCII, then C-level ``find``/slicing per name."""
        data = self._strtab.data
        limit = data.rfind(b"\0") + 1  # every name starts before the last NUL
        if data.isascii():
            text = data[:limit].decode("ascii")
            tfind = text.find
            return [text[off : tfind("\0", off)] for off in offsets]
        find = data.find
        return [_decode(data[off : find(b"\0", off)]) for off in offsets]

    # -- GNU property notes ---------------------------------------------------

    @cached_property
    def x86_isa_needed(self) -> int | None:
        """GNU_PROPERTY_X86_ISA_1_NEEDED from the first NT_GNU_PROPERTY_TYPE_0 note.

        Looked up in PT_GNU_PROPERTY, else in the PT_NOTE segments (as glibc does); only
        for x86 files, since the property number is processor-specific.
        """
        if self.header.machine not in (C.EM_X86_64, C.EM_386):
            return None
        segments = [p for p in self.program_headers if p.type == C.PT_GNU_PROPERTY]
        if not segments:
            segments = [p for p in self.program_headers if p.type == C.PT_NOTE]
        for ph in segments:
            desc = self._gnu_property_desc(ph)
            if desc is not None:
                return self._isa_property(desc, ph.offset)
        return None

    def _gnu_property_desc(self, ph: ProgramHeader) -> bytes | None:
        """The descriptor of the first GNU NT_GNU_PROPERTY_TYPE_0 note in a segment.

        gABI notes: namesz, descsz, type, then name and descriptor each padded to the
        segment alignment (8 for 8-aligned note segments, else 4).
        """
        align = 8 if ph.align == 8 else 4
        fmt = self._layout.note
        self._check_range(ph.offset, ph.filesz, "note segment")
        pos = 0
        while pos + fmt.size <= ph.filesz:  # each note is read piecewise: segments can be big
            at = ph.offset + pos
            namesz, descsz, ntype = fmt.unpack(self._read(at, fmt.size, "note header"))
            desc_at = _align_up(pos + fmt.size + namesz, align)
            if desc_at + descsz > ph.filesz:
                raise self._error(
                    f"note at offset {at:#x} (namesz {namesz}, descsz {descsz}) runs past "
                    f"the end of its segment"
                )
            if ntype == C.NT_GNU_PROPERTY_TYPE_0 and namesz == 4:
                name = bytes(self._read(at + fmt.size, 4, "note name"))
                if name == b"GNU\0":
                    return bytes(self._read(ph.offset + desc_at, descsz, "GNU property note"))
            pos = _align_up(desc_at + descsz, align)
        return None

    def _isa_property(self, desc: bytes, where: int) -> int | None:
        """Find GNU_PROPERTY_X86_ISA_1_NEEDED among the properties of one note.

        Each property is pr_type, pr_datasz, then data padded to 8 bytes (64-bit) or
        4 bytes (32-bit).
        """
        lay = self._layout
        pos = 0
        while pos + 8 <= len(desc):
            pr_type, datasz = lay.property.unpack_from(desc, pos)
            data_at = pos + 8
            if data_at + datasz > len(desc):
                raise self._error(
                    f"GNU property {pr_type:#x} in the note at offset {where:#x} declares "
                    f"{datasz} bytes of data, past the end of the note"
                )
            if pr_type == C.GNU_PROPERTY_X86_ISA_1_NEEDED:
                if datasz != 4:
                    raise self._error(
                        f"GNU_PROPERTY_X86_ISA_1_NEEDED in the note at offset {where:#x} "
                        f"has {datasz} bytes of data, expected 4"
                    )
                return int(lay.u32.unpack_from(desc, data_at)[0])
            pos = _align_up(data_at + datasz, lay.word)
        return None

    # -- all at once ---------------------------------------------------------

    def facts(self, symbols: SymbolScope = "all") -> ElfFacts:
        """All facts at once, as an immutable snapshot; ``symbols`` says which dynamic
        symbols they hold (:data:`SymbolScope`: every one by default)."""
        if symbols not in ("all", "imports"):
            raise ValueError(f"symbols must be 'all' or 'imports', not {symbols!r}")
        return ElfFacts(
            name=self.name,
            header=self.header,
            interpreter=self.interpreter,
            dynamic=self.dynamic,
            version_needs=self.version_needs,
            version_defs=self.version_defs,
            symbols=self.symbols if symbols == "all" else self.imports,
            x86_isa_needed=self.x86_isa_needed,
            symbol_scope=symbols,
        )


def _in_imports(symbol: Symbol) -> bool:
    """Whether ``symbol`` belongs to the ``"imports"`` scope (:data:`SymbolScope`)."""
    return not symbol.defined or symbol.name.startswith(EXPORT_PREFIX)


_Tail = tuple[bool, str, str, str | None, bool, str | None]


def _symbol_keys(symtab: bytes, versym: bytes, info_at: int, syment: int) -> array[int]:
    """One 64-bit key per symbol: its st_info, st_other, st_shndx bytes, then its
    .gnu.version entry, gathered with strided slice copies (no per-symbol Python)."""
    buf = bytearray(8 * (len(versym) // 2))
    for i in range(4):  # st_info, st_other, st_shndx (2 bytes)
        buf[i::8] = symtab[info_at + i :: syment]
    buf[4::8] = versym[0::2]
    buf[5::8] = versym[1::2]
    keys = array("Q")
    keys.frombytes(buf)
    return keys


class _UnknownVersion(Exception):
    """A .gnu.version entry names an index no Verdef/Vernaux declares."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class _SymbolTails(dict[int, _Tail]):
    """Cache symbol key (see :func:`_symbol_keys`) -> the Symbol fields after the name.

    Big libraries have 10^5 symbols but only a few hundred distinct combinations of
    binding, type, section and version, so each is decoded once (``__missing__``) and
    then found by a C-level dict lookup.
    """

    def __init__(self, version_index: dict[int, tuple[str, str | None]], byte_order: str) -> None:
        super().__init__()
        self._version_index = version_index
        # st_info, st_other, st_shndx, vs_index in the file's byte order, 2 pad bytes
        self._fields = struct.Struct(("<" if byte_order == "little" else ">") + "BBHH2x")
        self._key_bytes = sys.byteorder

    def __missing__(self, key: int) -> _Tail:
        info, _, shndx, versym = self._fields.unpack(key.to_bytes(8, self._key_bytes))
        defined = shndx != C.SHN_UNDEF
        index = versym & C.VERSYM_INDEX_MASK
        version: str | None = None
        library: str | None = None
        if index > C.VER_NDX_GLOBAL:
            found = self._version_index.get(index)
            if found is None:
                raise _UnknownVersion(index)
            version, library = found
        tail = (
            defined,
            _BIND_NAMES[info >> 4],
            _TYPE_NAMES[info & 0xF],
            version,
            bool(versym & C.VERSYM_HIDDEN),
            None if defined else library,
        )
        self[key] = tail
        return tail


def read_facts(path: str | os.PathLike[str]) -> ElfFacts:
    """Parse the ELF file at ``path`` once and return its facts."""
    with ElfFile.open(path) as elf:
        return elf.facts()
