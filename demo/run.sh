#!/usr/bin/env bash
# The manywheel demo: build a tiny extension that links a non-system library
# (libgreet, installed under demo/build/prefix/lib), then show what manywheel sees.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build="$here/build"
python=${PYTHON:-python3}
rm -rf "$build" && mkdir -p "$build/prefix/lib" "$build/ext"

cc=${CC:-gcc}
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')

echo "== building libgreet.so.1 into $build/prefix/lib"
"$cc" -shared -fPIC -O2 -Wl,-soname,libgreet.so.1 -o "$build/prefix/lib/libgreet.so.1" "$here/src/greet.c"
ln -sf libgreet.so.1 "$build/prefix/lib/libgreet.so"

echo "== building the _greet extension (RPATH points at the prefix)"
"$cc" -shared -fPIC -O2 -I"$include" -I"$here/src" -o "$build/ext/_greet$suffix" "$here/src/_greet.c" \
    -L"$build/prefix/lib" -lgreet -Wl,-rpath,"$build/prefix/lib" -Wl,--disable-new-dtags

echo "== importing it"
PYTHONPATH="$build/ext" "$python" -c 'import _greet; print(_greet.hello("demo"))'

echo "== manywheel lddtree"
"$python" -m manywheel lddtree "$build/ext/_greet$suffix"
