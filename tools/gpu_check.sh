#!/usr/bin/env bash
# Every GPU check in one command, for a machine with an NVIDIA GPU (DESIGN.md, "Checking
# without a GPU, and with one"): the device, the NVRTC compile check, the GPU tests, the
# same tests under compute-sanitizer memcheck and racecheck, and the GPU benchmark.
# Outputs go to $OUT (default bench/results/gpu-check); commit them with the device name.
#   OUT=/tmp/out bash tools/gpu_check.sh                 # every phase
#   OUT=/tmp/out bash tools/gpu_check.sh tests memcheck  # some: compile tests memcheck
#                                                        #   racecheck bench
# Phases let a session split the checks over calls that each have a time limit.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu-check}
mkdir -p "$OUT"
export PYTHONPATH=.
PHASES=${*:-compile tests memcheck racecheck bench}
status=0
step() {  # step NAME COMMAND...: run, keep its output, remember a failure
    local name=$1; shift
    case " $PHASES " in *" $name "*) ;; *) return 0 ;; esac
    echo "== $name: $*"
    local t0=$SECONDS
    "$@" > "$OUT/$name.txt" 2>&1
    local rc=$?
    echo "   rc=$rc in $((SECONDS - t0)) s; tail:"; tail -n 4 "$OUT/$name.txt" | sed 's/^/   /'
    [ $rc -eq 0 ] || status=1
}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv \
    > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"
# Without CuPy and a device every GPU test skips and would read as a pass: stop instead.
if ! python3 -c "from kernelgrad import devices; assert devices.cuda_available()" \
        > "$OUT/cupy.txt" 2>&1; then
    echo "no usable GPU through CuPy (see $OUT/cupy.txt): install the cuda12 or cuda13 extra"
    cat "$OUT/cupy.txt"; exit 1
fi
step compile python3 tools/cuda_compile_check.py
step tests python3 -m pytest -m gpu -q tests
# The sanitizers slow every launch a hundredfold: the small sizes still cover every
# kernel's edges and both its vector and scalar paths.
export KERNELGRAD_GPU_TESTS=small
step memcheck compute-sanitizer --tool memcheck --error-exitcode 1 \
    python3 -m pytest -m gpu -q -x tests --ignore=tests/nn
step racecheck compute-sanitizer --tool racecheck --error-exitcode 1 \
    python3 -m pytest -m gpu -q -x tests --ignore=tests/nn
unset KERNELGRAD_GPU_TESTS
step bench python3 -m bench --device cuda --out "$OUT/bench.json"
echo "checks ($PHASES): $([ $status -eq 0 ] && echo ok || echo FAILED)"
exit $status
