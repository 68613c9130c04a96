"""Package the demo's compiled `_greet` extension as a linux_<arch> wheel (PEP 427).

Kept tiny on purpose: a wheel is a zip with WHEEL, METADATA and RECORD in its
.dist-info directory; no build backend is needed for one prebuilt file.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import sysconfig
import zipfile
from pathlib import Path

NAME, VERSION = "greet_demo", "1.0"


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def main(extension: str, outdir: str) -> None:
    ext = Path(extension)
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    dist_info = f"{NAME}-{VERSION}.dist-info"
    files = {
        ext.name: ext.read_bytes(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
            "Summary: manywheel demo: an extension linking libgreet.so.1\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: manywheel-demo\nRoot-Is-Purelib: false\n"
            f"Tag: {py}-{py}-{plat}\n"
        ).encode(),
    }
    record = "".join(f"{p},{record_hash(d)},{len(d)}\n" for p, d in files.items())
    record += f"{dist_info}/RECORD,,\n"
    out = Path(outdir) / f"{NAME}-{VERSION}-{py}-{py}-{plat}.whl"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(f"{dist_info}/RECORD", record)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
