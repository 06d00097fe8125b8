#!/bin/bash
# The installed package end to end, from a temporary prefix only (see CMakeLists.txt).
# usage: test_install.sh CMAKE BUILD_DIR LIBDIR VERSION CC SOURCE_DIR
# Every check prints FAIL: and what it saw; the test fails if any did.
set -u
cmake=$1 build=$2 libdir=$3 version=$4 cc=$5 src=$6
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail=0
bad() {
    echo "FAIL: $*"
    fail=1
}

for tool in man groff nm pkg-config python3; do
    command -v "$tool" > /dev/null || bad "$tool is not installed (scripts/install-deps.sh)"
done
"$cmake" --install "$build" --prefix "$prefix" > "$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"
    echo "FAIL: cmake --install exited non-zero"
    exit 1
}
hetrun=$prefix/bin/hetrun

# ---- layout ----
for f in bin/hetrun include/hetrun/backend.h include/hetrun/ops.h include/hetrun/reference.h \
    "$libdir/libhetrun_reference.a" "$libdir/hetrun/libhetrun_backend_cpu.so" \
    "$libdir/cmake/hetrun/hetrunConfig.cmake" "$libdir/cmake/hetrun/hetrunConfigVersion.cmake" \
    "$libdir/cmake/hetrun/hetrunTargets.cmake" "$libdir/cmake/hetrun/HetrunAddBackend.cmake" \
    "$libdir/pkgconfig/hetrun.pc" share/hetrun/template/CMakeLists.txt \
    share/hetrun/template/template_backend.c share/hetrun/template/README.md \
    share/doc/hetrun/LICENSE share/doc/hetrun/README.md share/doc/hetrun/docs/backend-guide.md \
    share/doc/hetrun/docs/ops.md share/doc/hetrun/docs/jobspec.md share/doc/hetrun/docs/exit-codes.md \
    share/hetrun/examples/gemm.yaml share/hetrun/examples/data/digits.csv.gz \
    share/hetrun/bench/suites/quick.yaml share/hetrun/bench/plot.py \
    share/man/man1/hetrun.1 share/man/man1/hetrun-run.1 \
    "share/modulefiles/hetrun/$version.lua" "share/modulefiles/hetrun/$version"; do
    [ -e "$prefix/$f" ] || bad "not installed: $f"
done
# The template must not need hetrun's source tree (kernels/ is not installed).
if grep -n '"kernels/' "$prefix/share/hetrun/template/template_backend.c"; then
    bad "the installed template includes headers that are not installed"
fi

# ---- --version and help ----
"$hetrun" --version > "$tmp/version.txt" 2>&1 || bad "hetrun --version exited non-zero"
cat "$tmp/version.txt"
grep -q "^hetrun $version (commit [^ ,]*, [A-Za-z]* build" "$tmp/version.txt" ||
    bad "--version lacks version, commit or build type"
grep -q "^backends built: .*cpu" "$tmp/version.txt" || bad "--version lacks the backends built"
grep -q "backend ABI 1\." "$tmp/version.txt" || bad "--version lacks the backend ABI"
"$hetrun" --help > "$tmp/general.txt"
commands=$(sed -n '/^commands:/,/^$/p' "$tmp/general.txt" | awk 'NR > 1 && NF {print $1}')
[ -n "$commands" ] || bad "no commands in 'hetrun --help'"
for c in $commands; do
    "$hetrun" help "$c" > "$tmp/help_$c.txt" 2>&1 || bad "hetrun help $c exited non-zero"
    "$hetrun" "$c" --help > "$tmp/opt_$c.txt" 2>&1
    cmp -s "$tmp/help_$c.txt" "$tmp/opt_$c.txt" || bad "'hetrun help $c' differs from '$c --help'"
    grep -q "^usage: hetrun $c" "$tmp/help_$c.txt" || bad "'hetrun help $c' is not $c's help"
    # Every command has its man page, rendered from that help: each long option appears.
    page=$prefix/share/man/man1/hetrun-$c.1
    [ -f "$page" ] || { bad "no man page hetrun-$c.1"; continue; }
    for opt in $(grep -o -- '--[a-z][a-z-]*' "$tmp/help_$c.txt" | sort -u); do
        roff=$(printf '%s' "$opt" | sed 's/-/\\-/g')
        grep -qF -- "$roff" "$page" || bad "hetrun-$c.1 lacks $opt from '$c --help'"
    done
done
"$hetrun" help nosuch > /dev/null 2>&1
[ $? -eq 2 ] || bad "'hetrun help nosuch' should exit 2 (usage)"

# ---- man pages: groff renders each without a warning, man -l shows it ----
for page in "$prefix"/share/man/man1/*.1; do
    warn=$(groff -man -Tutf8 -ww -Wbreak -z "$page" 2>&1)
    [ -z "$warn" ] || bad "$(basename "$page"): groff warnings: $warn"
done
MANWIDTH=80 man -l "$prefix/share/man/man1/hetrun-run.1" > "$tmp/man.txt" 2> "$tmp/man.err" ||
    bad "man -l hetrun-run.1 failed: $(cat "$tmp/man.err")"
for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" "SEE ALSO"; do
    grep -q "^$s" "$tmp/man.txt" || bad "man hetrun-run has no $s section"
done
grep -q -- "--backend NAME" "$tmp/man.txt" || bad "man hetrun-run does not show --backend NAME"
MANWIDTH=80 man -l "$prefix/share/man/man1/hetrun.1" > "$tmp/man1.txt" 2>&1
grep -q "hetrun-run(1)" "$tmp/man1.txt" || bad "man hetrun does not point at hetrun-run(1)"

# ---- installed examples and bench suites validate ----
"$hetrun" validate "$prefix"/share/hetrun/examples/*.yaml "$prefix"/share/hetrun/bench/suites/*.yaml \
    > "$tmp/validate.txt" 2>&1 || { cat "$tmp/validate.txt"; bad "installed examples do not validate"; }

# ---- the template, out of tree, from the installed prefix only ----
cp -r "$prefix/share/hetrun/template" "$tmp/npu"
env -u HETRUN_SOURCE_DIR "$cmake" -S "$tmp/npu" -B "$tmp/npu/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_INSTALL_PREFIX="$tmp/vendor" -DHETRUN_CONFORMANCE_ARGS=--quick > "$tmp/npu.log" 2>&1 &&
    "$cmake" --build "$tmp/npu/build" >> "$tmp/npu.log" 2>&1 &&
    "$cmake" --install "$tmp/npu/build" >> "$tmp/npu.log" 2>&1 ||
    { cat "$tmp/npu.log"; bad "the template does not build out of tree against the install"; }
grep -q "^hetrun_DIR:PATH=$prefix/$libdir/cmake/hetrun$" "$tmp/npu/build/CMakeCache.txt" ||
    bad "find_package(hetrun) did not use the installed prefix: $(grep hetrun_DIR "$tmp/npu/build/CMakeCache.txt")"
# "$src/" with its slash: a clone at /tmp/cc must not match gcc's /tmp/ccXXXXXX temp names
if grep -rqF "$src/" "$tmp/npu/build/CMakeCache.txt" "$tmp/npu/build/CMakeFiles" 2> /dev/null; then
    bad "the out-of-tree build refers to the source tree $src"
fi
module=$tmp/vendor/$libdir/hetrun/libhetrun_backend_template.so
[ -f "$module" ] || bad "hetrun_add_backend did not install $module"
exports=$(nm -D --defined-only "$tmp/npu/build/libhetrun_backend_template.so" 2> /dev/null |
    awk '$2 ~ /^[TDBR]$/ {print $3}' | grep -v '^_' | tr '\n' ' ')
[ "$exports" = "hetrun_backend_entry " ] || bad "the module exports '$exports', not only hetrun_backend_entry"

# The same module built without CMake, from hetrun.pc (its comment's command).
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
mkdir -p "$tmp/pc"
# shellcheck disable=SC2046
"$cc" -std=gnu11 -shared -fPIC -fvisibility=hidden $(pkg-config --cflags hetrun) \
    "$tmp/npu/template_backend.c" -o "$tmp/pc/libhetrun_backend_template.so" \
    $(pkg-config --libs hetrun) -Wl,--no-undefined,--exclude-libs,ALL 2> "$tmp/pc.err" ||
    bad "the template does not build with pkg-config hetrun: $(cat "$tmp/pc.err")"
[ "$(pkg-config --modversion hetrun)" = "$version" ] || bad "hetrun.pc version is not $version"
[ "$(pkg-config --variable=prefix hetrun)" = "$prefix" ] || bad "hetrun.pc prefix is not $prefix"

# Loaded by the installed hetrun (its own modules from the prefix, not from a build tree).
for dir in "$tmp/npu/build" "$tmp/pc"; do
    HETRUN_BACKEND_PATH=$dir:$prefix/$libdir/hetrun "$hetrun" backends --format json \
        > "$tmp/backends.json" 2> "$tmp/backends.err" || bad "hetrun backends exited non-zero ($dir)"
    python3 - "$tmp/backends.json" "$dir" <<'PY' || bad "hetrun backends: template from $dir not loaded"
import json, sys
doc = json.load(open(sys.argv[1]))
tpl = [m for m in doc["backends"] if m.get("name") == "template"]
ok = tpl and tpl[0].get("state") == "loaded" and len(tpl[0].get("devices", [])) == 2 and \
     str(tpl[0].get("path", "")).startswith(sys.argv[2])
if not ok:
    print(json.dumps(tpl, indent=1)[:2000])
sys.exit(0 if ok else 1)
PY
done

# Conformance on it, as the template's own `ctest` runs it (hetrun_add_conformance_test): the
# installed hetrun-conformance where it is installed, else `hetrun conform`.
"$(dirname "$cmake")/ctest" --test-dir "$tmp/npu/build" -V > "$tmp/conf.txt" 2>&1 ||
    { tail -30 "$tmp/conf.txt"; bad "the template's conformance test (its ctest) failed"; }
grep -m1 "Test command:" "$tmp/conf.txt"
grep -E "[0-9]+ passed, [0-9]+ failed" "$tmp/conf.txt" | tail -1
grep -q "100% tests passed, 0 tests failed out of 1" "$tmp/conf.txt" ||
    bad "the template's ctest did not run its one conformance test"

# ---- modulefiles ----
lua=$prefix/share/modulefiles/hetrun/$version.lua
grep -q "local root = \"$prefix\"" "$lua" || bad "$version.lua does not name the install prefix"
if [ -f /usr/share/lmod/lmod/init/bash ]; then
    out=$(env -i HOME="$HOME" PATH=/usr/bin:/bin bash -c "
        source /usr/share/lmod/lmod/init/bash
        module use '$prefix/share/modulefiles' && module load hetrun/$version &&
        command -v hetrun && man -w hetrun-run && pkg-config --modversion hetrun &&
        echo \"root=\$HETRUN_ROOT\"" 2>&1)
    echo "$out" | grep -qx "$prefix/bin/hetrun" || bad "Lmod: hetrun not on PATH after module load: $out"
    echo "$out" | grep -qx "$prefix/share/man/man1/hetrun-run.1" || bad "Lmod: man page not found: $out"
    echo "$out" | grep -qx "$version" || bad "Lmod: hetrun.pc not on PKG_CONFIG_PATH: $out"
    echo "$out" | grep -qx "root=$prefix" || bad "Lmod: HETRUN_ROOT not set: $out"
else
    echo "note: Lmod not installed (apt-get install lmod); the Lua modulefile was not loaded"
fi
# The Tcl modulefile, read by tclsh with the module commands recording what they set.
if command -v tclsh > /dev/null; then
    got=$(printf '%s\n' 'proc setenv {n v} {puts "$n=$v"}' 'proc prepend-path {n v} {puts "$n+=$v"}' \
        'proc module-whatis {t} {}' "source {$prefix/share/modulefiles/hetrun/$version}" | tclsh 2>&1)
    echo "$got" | grep -qx "PATH+=$prefix/bin" || bad "Tcl modulefile: PATH not set: $got"
    echo "$got" | grep -qx "MANPATH+=$prefix/share/man" || bad "Tcl modulefile: MANPATH not set: $got"
    head -1 "$prefix/share/modulefiles/hetrun/$version" | grep -q '^#%Module' ||
        bad "Tcl modulefile lacks the #%Module cookie"
fi

# ---- DESTDIR staging (how distributions and Spack package): prefix-naming files name the
# final prefix, not the staging folder ----
DESTDIR=$tmp/stage "$cmake" --install "$build" --prefix /opt/hetrun > "$tmp/stage.log" 2>&1 ||
    bad "DESTDIR install failed: $(tail -5 "$tmp/stage.log")"
grep -q "^prefix=/opt/hetrun$" "$tmp/stage/opt/hetrun/$libdir/pkgconfig/hetrun.pc" ||
    bad "DESTDIR install: hetrun.pc does not name /opt/hetrun"
grep -q 'local root = "/opt/hetrun"' "$tmp/stage/opt/hetrun/share/modulefiles/hetrun/$version.lua" ||
    bad "DESTDIR install: the modulefile does not name /opt/hetrun"

# ---- the Spack recipe at least compiles as Python ----
python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' \
    "$src/packaging/spack/hetrun/package.py" 2> "$tmp/spack.err" ||
    bad "packaging/spack/hetrun/package.py: $(cat "$tmp/spack.err")"

[ $fail -eq 0 ] && echo "install: all checks passed ($prefix)"
exit $fail
