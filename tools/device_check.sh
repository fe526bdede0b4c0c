#!/usr/bin/env bash
# Builds rewardc with the CUDA backend on a GPU machine and runs the CUDA
# checks, logging every step to $OUT. Failures are recorded, never fatal:
# later steps still run, and summary.txt says what passed.
#
#   tools/device_check.sh               on the GPU machine (from the repo root
#                                       or anywhere); logs go to $OUT, else to
#                                       build-device-out/
#   tools/device_check.sh --fetch-deps  on a Debian machine WITH network, before:
#                                       downloads the .debs of the build
#                                       dependencies (cJSON, PCRE2, OpenBLAS,
#                                       pkgconf) into build-devdeps/debs/, to be
#                                       carried to a GPU machine that lacks them
#
# Steps on the GPU machine, most important first:
#   1. environment: GPU, driver, nvcc, cmake, compilers, libraries found
#   2. cmake build with -DRC_CUDA=ON (RC_BLAS / RC_OPENMP as available; missing
#      cJSON / PCRE2 / OpenBLAS are taken from carried build-devdeps/debs)
#   3. ctest with REWARDC_BACKEND=cuda on the CUDA-relevant tests, then the
#      cpu-vs-cuda benchmarks
#   4. only if cmake could not build them: a direct build (nvcc + cc, no cmake
#      or pkg-config) of the backend tests (tests/test_cuda_*.c,
#      tests/test_backend_*.c), and their runs
#   5. compute-sanitizer memcheck and racecheck on test_cuda_smoke
#   6. the rest of ctest (tests that never touch the backend)
#
# Environment: DEVICE_SKIP_BENCH=1 / DEVICE_SKIP_OTHER_TESTS=1 skip the
# benchmarks / step 6; OUT (log folder), REWARDC_DATA (shared data; else
# build-devdata/ in the repo if present), DEVICE_CHECK_BUDGET_S (seconds for
# the whole script, default 420; steps that would start later are skipped),
# CUDA_ARCH (e.g. 90; default: read from nvidia-smi).
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPS_DIR=$REPO/build-devdeps
DEB_PACKAGES="libcjson1 libcjson-dev libpcre2-8-0 libpcre2-dev pkgconf-bin libpkgconf3
libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libquadmath0"

if [ "${1:-}" = "--fetch-deps" ]; then
    mkdir -p "$DEPS_DIR/debs" || exit 1
    cd "$DEPS_DIR/debs" || exit 1
    # shellcheck disable=SC2086
    apt-get download $DEB_PACKAGES || { echo "apt-get download failed" >&2; exit 1; }
    ls -l "$DEPS_DIR/debs"
    echo "now carry build-devdeps/debs to the GPU machine (14 MB)"
    exit 0
fi

OUT=${OUT:-$REPO/build-device-out}
mkdir -p "$OUT"
LOG=$OUT/device_check.log
SUMMARY=$OUT/summary.txt
: >"$LOG"
: >"$SUMMARY"
START=$(date +%s)
BUDGET=${DEVICE_CHECK_BUDGET_S:-420}
JOBS=$(nproc 2>/dev/null || echo 4)

log() { echo "$*" | tee -a "$LOG"; }
note() { echo "$*" | tee -a "$LOG" >>"$SUMMARY"; }
elapsed() { echo $(($(date +%s) - START)); }

# step NAME MAX_SECONDS COMMAND...: runs COMMAND with output in the log and
# a line in the summary; skipped when the budget is spent.
step() {
    local name=$1 max=$2
    shift 2
    local left=$((BUDGET - $(elapsed)))
    if [ "$left" -lt 20 ]; then
        note "SKIP  $name (time budget spent)"
        return 1
    fi
    [ "$max" -gt "$left" ] && max=$left
    log ""
    log "===== $name (limit ${max}s) ====="
    local t0 rc
    t0=$(date +%s)
    timeout --kill-after=10 "$max" "$@" >>"$LOG" 2>&1
    rc=$?
    local dt=$(($(date +%s) - t0))
    if [ "$rc" -eq 0 ]; then
        note "PASS  $name (${dt}s)"
    elif [ "$rc" -eq 77 ]; then
        note "SKIP  $name (${dt}s, exit 77)"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        note "TIME  $name (stopped at its ${max}s limit after ${dt}s)"
    else
        note "FAIL  $name (exit $rc, ${dt}s)"
    fi
    return "$rc"
}

# ---------------------------------------------------------------- 1. environment
log "device_check: repo $REPO, out $OUT, budget ${BUDGET}s, $JOBS cores, $(date -u)"
{
    echo "== uname"; uname -a
    echo "== nvidia-smi"; nvidia-smi 2>&1 || echo "nvidia-smi not available"
    echo "== git"; git -C "$REPO" log --oneline -1 2>&1; git -C "$REPO" status --short 2>&1 | head -30
} >>"$LOG" 2>&1

NVCC=$(command -v nvcc || true)
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
CMAKE=$(command -v cmake || true)
[ -z "$CMAKE" ] && [ -x /opt/torch/.venv/bin/cmake ] && CMAKE=/opt/torch/.venv/bin/cmake
CC_BIN=$(command -v gcc || command -v cc || command -v clang || true)
SANITIZER=$(command -v compute-sanitizer || true)

if [ -n "$NVCC" ]; then
    CUDA_HOME=$(cd "$(dirname "$NVCC")/.." && pwd)
    note "found nvcc: $NVCC ($("$NVCC" --version | tail -1))"
    [ -z "$SANITIZER" ] && [ -x "$CUDA_HOME/bin/compute-sanitizer" ] &&
        SANITIZER=$CUDA_HOME/bin/compute-sanitizer
else
    CUDA_HOME=/usr/local/cuda
    note "MISSING nvcc (not on PATH, not in /usr/local/cuda/bin): no CUDA build possible"
fi
if [ -n "$CC_BIN" ]; then note "found C compiler: $CC_BIN ($("$CC_BIN" --version | head -1))"
else note "MISSING a C compiler (gcc, cc or clang)"; fi
if [ -n "$CMAKE" ]; then note "found cmake: $CMAKE ($("$CMAKE" --version | head -1))"
else note "MISSING cmake (not on PATH, not /opt/torch/.venv/bin/cmake): step 4-5 skipped"; fi

CUDA_ARCH=${CUDA_ARCH:-}
if [ -z "$CUDA_ARCH" ]; then
    CUDA_ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null |
                head -1 | tr -d ' .\r')
    [ -z "$CUDA_ARCH" ] && CUDA_ARCH=90
fi
note "CUDA architecture for this build: sm_$CUDA_ARCH"

# Data for the data-driven tests (not part of the repo).
if [ -z "${REWARDC_DATA:-}" ] && [ -d "$REPO/build-devdata" ]; then
    export REWARDC_DATA=$REPO/build-devdata
fi
note "REWARDC_DATA=${REWARDC_DATA:-<unset: data-driven tests will skip or fail>}"

OPENMP_FLAG=""
if [ -n "$CC_BIN" ] && echo 'int main(void){return 0;}' |
        "$CC_BIN" -x c -fopenmp - -o "$OUT/.omp_probe" >/dev/null 2>&1; then
    OPENMP_FLAG=-fopenmp
    note "found OpenMP (-fopenmp links)"
else
    note "MISSING OpenMP for $CC_BIN: building with RC_OPENMP=OFF"
fi
rm -f "$OUT/.omp_probe"

export REWARDC_BACKEND=cuda

# ------------------------------------------------ 2. dependencies and cmake build
PKG_CONFIG_BIN=$(command -v pkg-config || command -v pkgconf || true)
missing_pkgs() {
    local p out=""
    for p in libcjson libpcre2-8 openblas; do
        if [ -z "$PKG_CONFIG_BIN" ] || ! "$PKG_CONFIG_BIN" --exists "$p" 2>/dev/null; then
            out="$out $p"
        fi
    done
    echo "$out"
}

# Unpacks the carried .debs under $TMPDIR (never into /, nor into the repo,
# which travels) and points pkg-config and the loader there. Python does the
# unpacking, so neither dpkg nor xz is needed.
use_carried_debs() {
    local root=${TMPDIR:-/tmp}/rewardc-devdeps-root
    rm -rf "$root"
    mkdir -p "$root"
    python3 - "$DEPS_DIR/debs" "$root" <<'PY' || return 1
import io, os, sys, tarfile
debs, root = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(debs)):
    if not name.endswith(".deb"):
        continue
    with open(os.path.join(debs, name), "rb") as f:
        blob = f.read()
    if not blob.startswith(b"!<arch>\n"):
        sys.exit(f"{name}: not an ar archive")
    pos, found = 8, False
    while pos + 60 <= len(blob):
        header = blob[pos:pos + 60]
        member = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        data = blob[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
        if member.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                if hasattr(tarfile, "fully_trusted_filter"):
                    tar.extractall(root, filter="fully_trusted")
                else:
                    tar.extractall(root)
            found = True
    print(("unpacked " if found else "NO data.tar in ") + name)
PY
    local lib=$root/usr/lib/x86_64-linux-gnu
    # The .pc files name /usr; make them name the unpacked tree.
    local pc
    for pc in $(find "$root" -name '*.pc'); do
        sed -i -e "s|=/usr|=$root/usr|g" "$pc"
    done
    export PKG_CONFIG_PATH=$lib/pkgconfig:$lib/openblas-pthread/pkgconfig:$root/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
    export LD_LIBRARY_PATH=$lib:$lib/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LIBRARY_PATH=$lib${LIBRARY_PATH:+:$LIBRARY_PATH}
    if [ -z "$PKG_CONFIG_BIN" ] && [ -x "$root/usr/bin/pkgconf" ]; then
        PKG_CONFIG_BIN=$root/usr/bin/pkgconf
    fi
    return 0
}

MISSING=$(missing_pkgs)
if [ -n "$MISSING" ]; then
    note "MISSING via pkg-config (${PKG_CONFIG_BIN:-no pkg-config}):$MISSING"
    if [ -d "$DEPS_DIR/debs" ]; then
        if use_carried_debs >>"$LOG" 2>&1; then
            MISSING=$(missing_pkgs)
            note "after unpacking build-devdeps/debs, still missing:${MISSING:- nothing}"
        else
            note "FAIL  unpacking build-devdeps/debs (see device_check.log)"
        fi
    else
        note "  (no build-devdeps/debs: run 'tools/device_check.sh --fetch-deps' on a machine"
        note "   with network and carry build-devdeps to get cJSON, PCRE2 and OpenBLAS here)"
    fi
fi
[ -z "$PKG_CONFIG_BIN" ] && note "MISSING pkg-config (the cmake build needs it)"

BLAS=ON
case " $MISSING " in *" openblas "*) BLAS=OFF ;; esac
OPENMP=OFF
[ -n "$OPENMP_FLAG" ] && OPENMP=ON
BUILD=$REPO/build-device
GENERATOR=()
if ! command -v make >/dev/null 2>&1 && command -v ninja >/dev/null 2>&1; then
    GENERATOR=(-G Ninja)
fi
KEEP_GOING=(-- -k)
[ ${#GENERATOR[@]} -gt 0 ] && KEEP_GOING=(-- -k 0)

CMAKE_OK=0
case " $MISSING " in
*" libcjson "* | *" libpcre2-8 "*)
    note "SKIP  cmake build: cJSON and PCRE2 are required by CMakeLists.txt" ;;
*)
    if [ -n "$CMAKE" ] && [ -n "$NVCC" ] && [ -n "$PKG_CONFIG_BIN" ]; then
        rm -rf "$BUILD"
        if step "cmake configure (RC_CUDA=ON RC_BLAS=$BLAS RC_OPENMP=$OPENMP)" 120 \
            "$CMAKE" -S "$REPO" -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
            -DRC_CUDA=ON -DRC_BLAS=$BLAS -DRC_OPENMP=$OPENMP \
            -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DCMAKE_CUDA_COMPILER="$NVCC" \
            -DPKG_CONFIG_EXECUTABLE="$PKG_CONFIG_BIN"; then
            # Keep going past targets that fail, so every test that can build does.
            step "cmake build (-j$JOBS)" 300 "$CMAKE" --build "$BUILD" -j"$JOBS" "${KEEP_GOING[@]}"
            CMAKE_OK=1
            [ -x "$BUILD/rewardc" ] && step "rewardc version" 30 "$BUILD/rewardc" version
        fi
    else
        note "SKIP  cmake build (needs cmake, nvcc and pkg-config)"
    fi ;;
esac

# ------------------------------------------- 3. ctest on the CUDA-relevant tests
if [ "$CMAKE_OK" -eq 1 ]; then
    # CUDA-relevant: the backend tests, and every test that reads REWARDC_BACKEND.
    names=""
    for f in "$REPO"/tests/test_*.c "$REPO"/tests/cli_*.sh; do
        [ -f "$f" ] || continue
        case $(basename "$f") in
        test_cuda_* | test_backend_* | test_train_backends.c) names="$names $(basename "${f%.*}")" ;;
        *) grep -q REWARDC_BACKEND "$f" && names="$names $(basename "${f%.*}")" ;;
        esac
    done
    regex="^($(echo "$names" | tr ' ' '\n' | grep -v '^$' | sort -u | paste -sd'|' -))\$"
    note "CUDA-relevant tests: $regex"
    (cd "$BUILD" && step "ctest CUDA-relevant (REWARDC_BACKEND=cuda)" 300 \
        ctest --output-on-failure --timeout 280 -j4 -R "$regex")
    [ -f "$BUILD/Testing/Temporary/LastTest.log" ] &&
        tail -c 8000000 "$BUILD/Testing/Temporary/LastTest.log" >"$OUT/ctest_cuda.log"
    # ---------------------------------------------------------------- benchmarks
    # rewardc's cuda backend against PyTorch on the same GPU, side by side
    # (tools/bench.py --device cuda; the machine's python3 holds torch). The
    # tables and BENCH lines go to the log (the device tool returns 8 files).
    TOKDIR=${REWARDC_DATA:-$REPO/build-devdata}/tokenizers/opt
    if [ "${DEVICE_SKIP_BENCH:-0}" = 1 ]; then
        note "SKIP  benchmarks (DEVICE_SKIP_BENCH=1)"
    elif [ -x "$BUILD/rewardc" ] && [ -f "$TOKDIR/vocab.json" ]; then
        step "bench.py --device cuda (tiny, opt-125m; vs torch on the GPU)" 240 \
            python3 "$REPO/tools/bench.py" --device cuda --rewardc "$BUILD/rewardc" \
            --tokenizer "$TOKDIR" --out /tmp/rewardc-bench --sgemm-size 4096 \
            --steps 10 --warmup 2 --threads 4
        HH=${REWARDC_DATA:-$REPO/build-devdata}/hh-rlhf/harmless_base_dev.jsonl.gz
        if [ -f "$HH" ]; then
            step "bench_hh.py --device cuda (64 HH-RLHF pairs, opt-125m)" 240 \
                python3 "$REPO/tools/bench_hh.py" --device cuda --rewardc "$BUILD/rewardc" \
                --tokenizer "$TOKDIR" --input "$HH" --out /tmp/rewardc-bench --threads 4
        else
            note "SKIP  bench_hh.py (no $HH: copy it into build-devdata/hh-rlhf and carry that)"
        fi
        grep -E "^BENCH " "$LOG" >>"$SUMMARY"
    else
        note "SKIP  benchmarks (need $BUILD/rewardc and $TOKDIR)"
    fi
fi

# ------------------------------- 4. direct build of the backend tests (fallback)
# Only the backends, src/common and the tests: no cJSON, PCRE2, BLAS or cmake.
DIRECT=$REPO/build-device-direct
direct_build() {
    set -e
    rm -rf "$DIRECT"
    mkdir -p "$DIRECT/obj"
    local cflags=(-std=c11 -O2 -Wall -Wextra -DRC_HAVE_CUDA=1 "-DRC_VERSION=\"direct\""
                  "-DRC_CUDA_ARCHS=\"$CUDA_ARCH\"" $OPENMP_FLAG
                  -I"$REPO/include" -I"$REPO/backends" -I"$REPO/backends/cuda" -I"$REPO/src"
                  -I"$REPO/tests" -I"$CUDA_HOME/include")
    [ -n "$OPENMP_FLAG" ] && cflags+=(-DRC_HAVE_OPENMP=1)
    local f o objs=()
    for f in "$REPO"/src/common/*.c; do
        # Helpers that need more than libc (say cJSON) are left out; the
        # backends use only status.c and rng.c.
        o=$DIRECT/obj/common_$(basename "$f").o
        ("$CC_BIN" "${cflags[@]}" -c "$f" -o "$o" ||
            { echo "left out $f (does not compile standalone)"; rm -f "$o"; }) &
    done
    for f in "$REPO"/backends/backend.c "$REPO"/backends/cpu/*.c "$REPO"/backends/cuda/*.c; do
        "$CC_BIN" "${cflags[@]}" -c "$f" -o "$DIRECT/obj/$(basename "$(dirname "$f")")_$(basename "$f").o" &
    done
    for f in "$REPO"/backends/cuda/*.cu; do
        "$NVCC" -std=c++17 -O3 --fmad=false -arch=sm_"$CUDA_ARCH" -Xcompiler=-Wall,-Wextra \
            "-DRC_CUDA_ARCHS=\"$CUDA_ARCH\"" -I"$REPO/include" -I"$REPO/backends" \
            -I"$REPO/backends/cuda" -c "$f" -o "$DIRECT/obj/cu_$(basename "$f").o" &
    done
    "$CC_BIN" "${cflags[@]}" -c "$REPO/tests/testlib.c" -o "$DIRECT/testlib.o" &
    local pid status=0
    for pid in $(jobs -p); do wait "$pid" || status=1; done
    [ "$status" -eq 0 ] || { echo "compilation failed"; return 1; }
    objs=("$DIRECT"/obj/*.o)
    local t built=0
    for t in "$REPO"/tests/test_cuda_*.c "$REPO"/tests/test_backend_*.c; do
        [ -f "$t" ] || continue
        t=$(basename "$t" .c)
        if "$CC_BIN" "${cflags[@]}" "$REPO/tests/$t.c" "$DIRECT/testlib.o" "${objs[@]}" \
               -L"$CUDA_HOME/lib64" -Wl,-rpath,"$CUDA_HOME/lib64" -lcublas -lcudart \
               -lstdc++ -lm -lpthread $OPENMP_FLAG -o "$DIRECT/$t"; then
            built=$((built + 1))
        else
            echo "linking $t failed"
        fi
    done
    [ "$built" -gt 0 ]
}
if [ "$CMAKE_OK" -eq 1 ] && [ -x "$BUILD/tests/test_cuda_smoke" ]; then
    note "SKIP  direct build (the cmake build made the backend tests)"
elif [ -n "$NVCC" ] && [ -n "$CC_BIN" ]; then
    if step "direct build (nvcc sm_$CUDA_ARCH + $(basename "$CC_BIN"))" 240 bash -c \
        "$(declare -f direct_build); REPO='$REPO' DIRECT='$DIRECT' CC_BIN='$CC_BIN' \
         NVCC='$NVCC' CUDA_HOME='$CUDA_HOME' CUDA_ARCH='$CUDA_ARCH' \
         OPENMP_FLAG='$OPENMP_FLAG' direct_build"; then
        if [ -x "$DIRECT/test_cuda_smoke" ]; then
            step "test_cuda_smoke (direct)" 180 "$DIRECT/test_cuda_smoke"
            smoke_rc=$?
            if [ "$smoke_rc" -ne 0 ] && [ "$smoke_rc" -ne 77 ]; then
                # Name the op behind an asynchronous error.
                step "test_cuda_smoke again with REWARDC_CUDA_SYNC=1" 180 \
                    env REWARDC_CUDA_SYNC=1 "$DIRECT/test_cuda_smoke"
            fi
        fi
        for t in "$DIRECT"/test_backend_*; do
            [ -x "$t" ] && step "$(basename "$t") (direct)" 240 "$t"
        done
    fi
else
    note "SKIP  direct build (needs nvcc and a C compiler)"
fi

# ---------------------------------------------------------- 5. compute-sanitizer
SMOKE=$BUILD/tests/test_cuda_smoke
[ -x "$SMOKE" ] || SMOKE=$DIRECT/test_cuda_smoke
if [ -n "$SANITIZER" ] && [ -x "$SMOKE" ]; then
    # The smoke test's deliberate 16 TiB allocation is an API error by design.
    step "compute-sanitizer memcheck test_cuda_smoke" 180 \
        "$SANITIZER" --tool memcheck --report-api-errors no --error-exitcode 9 \
        --log-file "$OUT/sanitizer.log" "$SMOKE"
    step "compute-sanitizer racecheck test_cuda_smoke" 120 \
        "$SANITIZER" --tool racecheck --report-api-errors no --error-exitcode 9 \
        --log-file "$OUT/sanitizer_race.log" "$SMOKE"
else
    note "SKIP  compute-sanitizer (${SANITIZER:-not found}; needs a built test_cuda_smoke)"
fi

# ----------------------------------------------------------- 6. the rest of ctest
if [ "$CMAKE_OK" -eq 1 ]; then
    [ "${DEVICE_SKIP_OTHER_TESTS:-0}" = 1 ] && { note "SKIP  other tests (DEVICE_SKIP_OTHER_TESTS=1)"; } ||
    (cd "$BUILD" && step "ctest all other tests (REWARDC_BACKEND=cuda)" 300 \
        ctest --output-on-failure --timeout 280 -j"$JOBS" -E "$regex")
    [ -f "$BUILD/Testing/Temporary/LastTest.log" ] &&
        tail -c 8000000 "$BUILD/Testing/Temporary/LastTest.log" >"$OUT/ctest_other.log"
fi

log ""
log "===== summary ($(elapsed)s) ====="
cat "$SUMMARY"
exit 0
