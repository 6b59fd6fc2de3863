#!/usr/bin/env bash
# Everything a GPU run is for, in one command of at most 10 minutes:
#
#   bash tools/gpu_check.sh OUTDIR              # on a machine with an NVIDIA GPU
#   bash tools/gpu_check.sh OUTDIR --rehearse   # the same steps on the CPU emulator of CUDA
#
# 1. the device (nvidia-smi) and a stop, at once, if CuPy sees no GPU;
# 2. every GPU test (pytest -m gpu), each kernel against the reference;
# 3. the GPU benchmark (python -m bench --device cuda): ratios against cuBLAS, PyTorch
#    and the copy bandwidth, as JSON and PNG;
# 4. compute-sanitizer memcheck and racecheck on a reduced set (the small sizes, the op
#    tests without nn; racecheck only the tests of the kernels with shared memory), where
#    the sanitizer supports the device (it says so otherwise).
# Writes at most 8 files into OUTDIR and prints a summary table last. Uses the Python it
# finds (CuPy, pytest, hypothesis and PyTorch already installed; nothing is downloaded):
# kernelgrad runs from this checkout through PYTHONPATH, not installed.
# Each step has its own time limit (580 s in all), so the whole stays within 600 s;
# on an H200 the tests took 99 s, the benchmark 70 s and memcheck 14 s.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash tools/gpu_check.sh OUTDIR [--rehearse]}
REHEARSE=${2:-}
mkdir -p "$OUT"
export PYTHONPATH=".:tests${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
start=$SECONDS
declare -a SUMMARY

note() { SUMMARY+=("$(printf '%-10s %-8s %6s s  %s' "$1" "$2" "$3" "$4")"); }

step() {  # step NAME LIMIT_S LOG COMMAND...: run under a time limit, keep its output
    local name=$1 limit=$2 log=$3; shift 3
    echo "== $name (at most $limit s): $*"
    local t0=$SECONDS before
    before=$(cat "$OUT/$log" 2> /dev/null | wc -l)  # logs are shared: read this step's lines
    timeout --kill-after=10 "$limit" "$@" >> "$OUT/$log" 2>&1
    local rc=$?
    local took=$((SECONDS - t0))
    local last
    last=$(tail -n +"$((before + 1))" "$OUT/$log" \
        | grep -E "passed|failed|error|ERROR SUMMARY|RACECHECK SUMMARY|wrote" | tail -n 1)
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        note "$name" TIMEOUT "$took" "stopped at its $limit s limit; $last"
    elif [ $rc -eq 0 ]; then
        note "$name" ok "$took" "$last"
    else
        note "$name" FAILED "$took" "exit $rc; $last"
    fi
    tail -n 3 "$OUT/$log" | sed 's/^/   /'
}

if [ "$REHEARSE" = "--rehearse" ]; then
    # the CPU emulator stands in for the GPU: every step runs, none of the timings mean
    # anything, and there is no device or sanitizer to ask
    export KERNELGRAD_CUDA_EMULATOR=1 KERNELGRAD_GPU_TESTS=small
    echo "rehearsal on the CPU emulator of CUDA" > "$OUT/device.txt"
    BENCH=("$PY" -c "import sys; from cuda_emulator import cupy_shim; cupy_shim.install(); \
from bench.__main__ import main; sys.exit(main(sys.argv[1:]))" --tiny)
else
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap \
        --format=csv > "$OUT/device.txt" 2>&1
    BENCH=("$PY" -m bench)
fi
cat "$OUT/device.txt"
# Without CuPy and a device every GPU test would skip and read as a pass: stop instead.
if ! "$PY" -c "import os
if os.environ.get('KERNELGRAD_CUDA_EMULATOR') == '1':
    from cuda_emulator import cupy_shim; cupy_shim.install()
from kernelgrad import devices; assert devices.cuda_available()" >> "$OUT/device.txt" 2>&1; then
    echo "gpu_check: CuPy sees no usable GPU; nothing was checked (see $OUT/device.txt)"
    exit 1
fi

step tests 170 tests.txt "$PY" -m pytest -m gpu -q -p no:cacheprovider tests

# The benchmark before the sanitizers: a sanitizer that runs long must not starve it.
rm -f "$OUT/bench.json" "$OUT/bench.png"
step bench 140 bench.txt "${BENCH[@]}" --device cuda --out "$OUT/bench.json"

# The sanitizers slow every launch a hundredfold: the small sizes still reach every
# kernel's edges and both its vector and scalar paths.
if [ "$REHEARSE" = "--rehearse" ] || ! command -v compute-sanitizer > /dev/null; then
    note sanitizers skipped 0 "compute-sanitizer is not on this machine"
else
    for tool_limit in memcheck:60 racecheck:150; do
        tool=${tool_limit%:*} limit=${tool_limit#*:}
        probe=$(KERNELGRAD_GPU_TESTS=small timeout 30 compute-sanitizer --tool "$tool" \
            "$PY" -c "import cupy; cupy.arange(4).sum()" 2>&1)
        if grep -qi "not supported" <<< "$probe"; then
            echo "$probe" >> "$OUT/sanitizers.txt"
            note "$tool" skipped 0 "compute-sanitizer: $(grep -i -m1 'not supported' <<< "$probe")"
            continue
        fi
        if [ "$tool" = memcheck ]; then
            tests=(tests --ignore=tests/nn --ignore=tests/cuda_emulator)
        else  # racecheck sees shared memory only: the kernels that use it
            tests=(tests/test_matmul.py tests/test_softmax_cross_entropy.py
                   tests/test_bias_grad.py)
        fi
        KERNELGRAD_GPU_TESTS=small step "$tool" "$limit" sanitizers.txt \
            compute-sanitizer --tool "$tool" --error-exitcode 1 \
            "$PY" -m pytest -m gpu -q -x -p no:cacheprovider "${tests[@]}"
    done
fi


{
    echo "gpu_check summary ($(head -n 2 "$OUT/device.txt" | tail -n 1); $((SECONDS - start)) s in all)"
    printf '%-10s %-8s %6s    %s\n' step result time detail
    printf '%s\n' "${SUMMARY[@]}"
} | tee "$OUT/summary.txt"
! grep -qE " (FAILED|TIMEOUT) " "$OUT/summary.txt"
