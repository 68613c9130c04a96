#!/usr/bin/env bash
# The manywheel demo, end to end: build a tiny extension wheel that links a non-system
# library (libgreet, installed under demo/build/prefix/lib), show what it needs, repair
# it, show the result, then prove it: delete the prefix, install the repaired wheel into
# a fresh venv and import it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build="$here/build"
python=${PYTHON:-python3}
rm -rf "$build" && mkdir -p "$build/prefix/lib" "$build/ext" "$build/dist"

cc=${CC:-gcc}
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')

echo "== building libgreet.so.1 into $build/prefix/lib"
"$cc" -shared -fPIC -O2 -Wl,-soname,libgreet.so.1 -o "$build/prefix/lib/libgreet.so.1" "$here/src/greet.c"

echo "== building the _greet extension (its RPATH points at the prefix) and its wheel"
"$cc" -shared -fPIC -O2 -I"$include" -I"$here/src" -o "$build/ext/_greet$suffix" "$here/src/_greet.c" \
    -L"$build/prefix/lib" -l:libgreet.so.1 -Wl,-rpath,"$build/prefix/lib" -Wl,--disable-new-dtags
wheel=$("$python" "$here/make_wheel.py" "$build/ext/_greet$suffix" "$build/dist")

echo "== manywheel lddtree: what the loader would load"
"$python" -m manywheel lddtree "$build/ext/_greet$suffix"

echo "== manywheel show: which systems the wheel runs on, and why"
"$python" -m manywheel show "$wheel"

echo "== manywheel repair: graft libgreet into the wheel"
"$python" -m manywheel repair "$wheel" -w "$build/wheelhouse"
repaired=$(ls "$build"/wheelhouse/*.whl)

echo "== manywheel show on the repaired wheel"
"$python" -m manywheel show "$repaired"

echo "== proof: delete the prefix, install the repaired wheel into a fresh venv, import it"
rm -rf "$build/prefix"
"$python" -m venv "$build/venv"
"$build/venv/bin/python" -m pip install -q --no-index "$repaired"
(cd "$build" && "$build/venv/bin/python" -c 'import _greet; print(_greet.hello("demo"))')
