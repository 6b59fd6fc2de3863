"""Run the CPU kernel tests once per compile target this host can execute.

    python tools/cpu_targets.py [--jobs N] [TARGET ...] [-- PYTEST ARGS]

Numba compiles for NUMBA_CPU_NAME (with NUMBA_CPU_FEATURES empty, that CPU's own
features), so one machine can test the code other CPUs get: the AVX2+FMA build
(haswell), the baseline x86-64 one (SSE2, no FMA), and the AVX-512 one where the host has
AVX-512. A target the host cannot execute is skipped with a line that says which features
it lacks; its code is still compiled and read (test_cpu_target's assembly checks, in the
host's run). Each target's line in the summary names its pass count. With --jobs N, N
targets run at once (a target's run is mostly Numba compiling, one core's work); each
prints its output when it is done.
"""
import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import llvmlite.binding as ll

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What each target's code may use beyond baseline x86-64 (LLVM's definitions of the CPUs).
TARGETS = {
    "haswell": {"avx", "avx2", "fma", "bmi", "bmi2", "f16c", "lzcnt", "movbe"},
    "x86-64": set(),
    "skylake-avx512": {"avx", "avx2", "fma", "bmi", "bmi2", "f16c", "lzcnt", "movbe",
                       "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"},
}
# The kernel tests (every op, both dtypes, the GEMM's transposes and micro-kernel edges)
# and the nn parity tests against PyTorch.
TESTS = ["tests/test_matmul.py", "tests/test_matmul_skinny.py", "tests/test_activations.py",
         "tests/test_softmax_cross_entropy.py", "tests/test_losses.py", "tests/test_dropout.py",
         "tests/test_bias_grad.py", "tests/test_optim.py", "tests/test_philox.py",
         "tests/test_cpu_target.py", "tests/nn/test_torch_oracle.py"]


def missing_features(target):
    host = {name for name, on in ll.get_host_cpu_features().items() if on}
    return sorted(TARGETS[target] - host)


def run(target, pytest_args):
    # Each target has a Numba cache of its own: two processes saving the same function at
    # once, for different targets, can leave one's index entry pointing at the other's
    # code (Numba picks a data file's number from the index it read), and code built for
    # another target's tile sizes would then load.
    cache = os.path.join(ROOT, ".numba-cache", target)
    env = dict(os.environ, NUMBA_CPU_NAME=target, NUMBA_CPU_FEATURES="", NUMBA_CACHE_DIR=cache)
    # the assembly checks compile every target in their own processes: the host run has them
    command = [sys.executable, "-m", "pytest", "-q", "-m", "not assembly", *TESTS,
               *pytest_args]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    sys.stdout.write(f"== target {target}\n" + done.stdout[-3000:] + done.stderr[-3000:])
    sys.stdout.flush()
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "no output"
    return done.returncode, summary


def main(argv):
    if "--" in argv:
        split = argv.index("--")
        names, pytest_args = argv[:split], argv[split + 1:]
    else:
        names, pytest_args = argv, []
    jobs = 1
    if names[:1] == ["--jobs"]:
        if len(names) < 2 or not names[1].isdigit() or int(names[1]) < 1:
            print("--jobs takes a whole number of at least 1", file=sys.stderr)
            return 2
        jobs, names = int(names[1]), names[2:]
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        print(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}",
              file=sys.stderr)
        return 2
    if platform.machine() not in ("x86_64", "AMD64"):
        print(f"host {platform.machine()}: no x86 targets to test; the host run covers it")
        return 0
    results, runnable = {}, []
    for target in names or list(TARGETS):
        lacking = missing_features(target)
        if lacking:
            results[target] = f"skipped, this host lacks {', '.join(lacking)}"
            print(f"target {target}: {results[target]}", flush=True)
        else:
            runnable.append(target)
    failed = False
    with ThreadPoolExecutor(jobs) as pool:
        for target, (code, summary) in zip(
                runnable, pool.map(lambda t: run(t, pytest_args), runnable)):
            failed |= code != 0
            results[target] = summary
    lines = [f"target {t}: {results[t]}" for t in names or TARGETS]
    print("\n".join(["", "CPU targets:"] + lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
