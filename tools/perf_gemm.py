"""Where a GEMM's time goes, by sampling: `perf record -e cpu-clock` on a process that runs
K.matmul in a loop, the samples grouped into the hot regions of the JIT-compiled code,
each printed with its share and its hottest instructions (disassembled by objdump).

    python tools/perf_gemm.py 1024x1024x1024 [--threads 1] [--seconds 4] [--show 6]

Shapes as M x N x K, with a leading T for A transposed and a trailing T for B transposed
(T784x512x256, 256x784x512T). Needs Linux perf (software events are enough, as in a VM)
and objdump. Numba's code has no symbols for perf: the child copies its executable
anonymous mappings to files when it is done, and the samples are matched to those. The
micro-kernel's k loop is the region with the vfmadd block; time in the others is packing,
requests ahead (prefetch instructions) and the loops around them. Sampling costs the
loop 10-30% of its speed, so read the shares, not the rate printed.
"""
import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

CHILD = """
import ctypes, os, sys, time
import numpy as np
import kernelgrad.kernels as K
spec, seconds, ready, dump = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
ta, tb = spec.startswith("T"), spec.endswith("T")
m, n, k = map(int, spec.strip("T").split("x"))
rng = np.random.default_rng(0)
a = rng.random((k, m) if ta else (m, k), dtype=np.float32)
b = rng.random((n, k) if tb else (k, n), dtype=np.float32)
K.matmul(a, b, ta, tb, impl="numba")
open(ready, "w").write(str(os.getpid()))
calls, start = 0, time.perf_counter()
while time.perf_counter() - start < seconds:
    K.matmul(a, b, ta, tb, impl="numba")
    calls += 1
rate = 2 * m * n * k * calls / (time.perf_counter() - start) / 1e9
print(f"{calls} calls, {rate:.1f} GFLOP/s while sampled")
for line in open("/proc/self/maps"):
    fields = line.split()
    if "x" in fields[1] and len(fields) < 6:  # executable and anonymous: JIT code
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        if hi - lo <= 64 << 20:
            data = bytes((ctypes.c_char * (hi - lo)).from_address(lo))
            open(os.path.join(dump, f"{lo:x}.bin"), "wb").write(data)
"""


def regions(counts, gap=256):
    """Contiguous runs of sampled addresses (closer than `gap` bytes): [lo, hi, samples]."""
    groups = []
    for ip in sorted(counts):
        if groups and ip - groups[-1][1] <= gap:
            groups[-1][1] = ip
            groups[-1][2] += counts[ip]
        else:
            groups.append([ip, ip, counts[ip]])
    return sorted(groups, key=lambda g: -g[2])


def disassemble(dump, lo, hi):
    """[(address, text)] of the instructions in [lo, hi] from the dumped mapping."""
    for name in os.listdir(dump):
        base = int(name.split(".")[0], 16)
        path = os.path.join(dump, name)
        if base <= lo < base + os.path.getsize(path):
            out = subprocess.run(
                ["objdump", "-D", "-b", "binary", "-mi386:x86-64", f"--adjust-vma={base:#x}",
                 f"--start-address={lo:#x}", f"--stop-address={hi + 16:#x}", path],
                capture_output=True, text=True, check=True).stdout
            lines = []
            for line in out.splitlines():
                head, _, rest = line.partition(":")
                try:
                    lines.append((int(head.strip(), 16), " ".join(rest.split("\t")[-1:])))
                except ValueError:
                    continue
            return lines
    return []


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shape")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--show", type=int, default=6, help="regions to print")
    args = parser.parse_args()
    for tool in ("perf", "objdump"):
        if shutil.which(tool) is None:
            sys.exit(f"perf_gemm needs {tool} on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        ready, dump, data = (os.path.join(tmp, x) for x in ("ready", "dump", "perf.data"))
        os.mkdir(dump)
        # exactly --threads, whatever else the machine runs (no adapting to its load)
        env = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads),
                   KERNELGRAD_ADAPT_THREADS="0")
        child = subprocess.Popen([sys.executable, "-c", CHILD, args.shape,
                                  str(args.seconds + 2), ready, dump], env=env)
        while not os.path.exists(ready):
            if child.poll() is not None:
                sys.exit("the GEMM process ended before it was ready")
            time.sleep(0.1)
        time.sleep(0.2)  # the pid is written before the file is closed
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "5000", "-p",
                        open(ready).read(), "-o", data, "--", "sleep", str(args.seconds)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        child.wait()
        script = subprocess.run(["perf", "script", "-i", data, "-F", "ip,dso"],
                                capture_output=True, text=True, check=True).stdout
        jit, other, total = collections.Counter(), collections.Counter(), 0
        for line in script.splitlines():
            ip, _, dso = line.strip().partition(" ")
            total += 1
            if "perf-" in dso or "unknown" in dso:
                jit[int(ip, 16)] += 1
            else:
                other[os.path.basename(dso.strip("() "))] += 1
        print(f"{total} samples; outside the JIT code: " + ", ".join(
            f"{name} {n / total:.1%}" for name, n in other.most_common(4)))
        for lo, hi, n in regions(jit)[:args.show]:
            print(f"\n{n / total:6.1%}  {lo:x}-{hi:x}")
            code = disassemble(dump, lo, hi)
            hot = sorted(((jit.get(a, 0), a, text) for a, text in code), reverse=True)[:5]
            for count, address, text in sorted(hot, key=lambda h: h[1]):
                print(f"  {count / total:6.2%}  {address:x}  {text.strip()}")


if __name__ == "__main__":
    main()
