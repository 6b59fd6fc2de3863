"""OpenBLAS forced to the kernel of the compile target's widest vectors, in a child process.

OpenBLAS picks its GEMM kernel when it loads, from the CPU it recognises, and a build may
pick a narrower kernel than the CPU runs: on the Zen 5 machine of earlier results NumPy's
OpenBLAS ran its Haswell kernel (32-byte vectors) where the CPU and our kernels used
64-byte ones, a weak anchor. OPENBLAS_CORETYPE chooses the kernel, but only before the
library loads, so the forced library runs in a child process started once per benchmark,
which times GEMM blocks on request: the runner takes its blocks in turn with the other
libraries' (backend.time_in_blocks), and the child's threadpoolctl reports the kernel that
ran (a child whose OpenBLAS ignored the request is not used).

    python -m bench.forced_blas     # what would be forced here, and the child's report
"""
import atexit
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

# OpenBLAS's x86 kernels by the vectors their GEMM uses: 3 for 64 bytes (AVX-512), 2 for
# 32 bytes with FMA; any other x86 kernel (Sandybridge, Nehalem, ...) ranks below both.
KERNEL_RANK = {"skylakex": 3, "cooperlake": 3, "sapphirerapids": 3,
               "haswell": 2, "zen": 2, "excavator": 2}
# The kernel forced for each rank, and the CPU flags it executes (OpenBLAS's SkylakeX
# kernel uses AVX-512 F, CD, BW, DQ and VL): never force one the CPU cannot run.
FORCE = {3: ("SkylakeX", {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}),
         2: ("Haswell", {"avx2", "fma"})}


def host_flags():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def coretype_to_force(vector_bytes, fma, picked, flags, machine=None):
    """The OPENBLAS_CORETYPE to time besides the OpenBLAS NumPy loaded, or None: on x86,
    where the kernel it picked (threadpoolctl's architecture, e.g. "Haswell") uses
    narrower vectors than the compile target (vector_bytes, fma) and the CPU (flags) can
    run the wider kernel."""
    machine = machine or platform.machine()
    if picked is None or machine.lower() not in ("x86_64", "amd64"):
        return None
    wanted = 3 if vector_bytes >= 64 else (2 if vector_bytes >= 32 and fma else 0)
    for rank in range(wanted, KERNEL_RANK.get(picked.lower(), 1), -1):
        coretype, needs = FORCE[rank]
        if needs <= flags:
            return coretype
    return None


def openblas_picked():
    """The kernel architecture of the OpenBLAS this process loaded (NumPy's), or None."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for info in threadpool_info():
        if info.get("internal_api") == "openblas":
            return info.get("architecture")
    return None


def _send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _gemm(m, n, k, trans_a, trans_b, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    a, b = a.T if trans_a else a, b.T if trans_b else b
    return lambda: np.matmul(a, b)


def _serve():
    """The child: report the kernel loaded, then time the blocks asked for on stdin, each
    of a GEMM ("gemm": m, n, k, trans_a, trans_b, dtype) or a step's GEMM floor
    ("floor": batch, widths)."""
    from .backend import cpu_samples
    from .floor import gemm_floor
    _send({"architecture": openblas_picked()})
    made = {}
    for line in sys.stdin:
        request = json.loads(line)
        key = json.dumps(request["what"])
        if key not in made:
            kind, args = request["what"]
            made[key] = _gemm(*args) if kind == "gemm" else gemm_floor(*args)
        _send({"times": cpu_samples(made[key], **request["budget"])})


class ForcedOpenBLAS:
    """The child process with OPENBLAS_CORETYPE=coretype; gemm() gives timers for it."""

    def __init__(self, coretype):
        self.coretype = coretype
        env = dict(os.environ, OPENBLAS_CORETYPE=coretype)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.forced_blas", "--serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=env, cwd=root)
        self.architecture = self._receive().get("architecture")

    def _receive(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the OpenBLAS child ({self.coretype}) exited with status "
                               f"{self.process.wait()}")
        return json.loads(line)

    @property
    def honoured(self):
        """Whether the child's OpenBLAS runs the kernel asked for."""
        return (self.architecture or "").lower() == self.coretype.lower()

    def samples(self, what, **budget):
        self.process.stdin.write(json.dumps({"what": what, "budget": budget}) + "\n")
        self.process.stdin.flush()
        return self._receive()["times"]

    def gemm(self, m, n, k, trans_a=False, trans_b=False, dtype="float32"):
        """A timer of op(A) @ op(B) in the child."""
        return Remote(self, ["gemm", [m, n, k, bool(trans_a), bool(trans_b), dtype]])

    def floor(self, batch, widths):
        """A timer of an MLP step's GEMM floor (bench.floor.gemm_floor) in the child."""
        return Remote(self, ["floor", [batch, list(widths)]])

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Remote:
    """One thing timed in the child: backend.cpu_samples calls samples(**budget) for each
    block instead of timing a function here."""

    def __init__(self, child, what):
        self.child, self.what = child, what

    def samples(self, **budget):
        return self.child.samples(self.what, **budget)


_state = {}


def _decision():
    """(compile target info, the kernel NumPy's OpenBLAS runs, the coretype to force or
    None) for this process."""
    import kernelgrad.kernels as K  # here, not above: the child never imports it
    info = K.cpu_info()
    picked = openblas_picked()
    return info, picked, coretype_to_force(info["vector_bytes"], info["fma"], picked,
                                           host_flags())


def forced_openblas():
    """The running child for this process's compile target, started on first use, or None
    where nothing needs forcing (or the child's OpenBLAS did not honour the request)."""
    if "child" not in _state:
        coretype = _decision()[2]
        child = ForcedOpenBLAS(coretype) if coretype else None
        if child is not None:
            atexit.register(child.close)
            if not child.honoured:
                print(f"OPENBLAS_CORETYPE={coretype} was not honoured (the child's OpenBLAS "
                      f"runs {child.architecture}): no forced OpenBLAS anchor")
                child.close()
                child = None
        _state["child"] = child
    return _state["child"]


def main(argv):
    if argv == ["--serve"]:
        _serve()
        return 0
    info, picked, coretype = _decision()
    print(f"compile target {info['target']} ({info['vector_bytes']}-byte vectors); NumPy's "
          f"OpenBLAS runs {picked}; forced: {coretype or 'nothing'}")
    if coretype:
        child = ForcedOpenBLAS(coretype)
        print(f"child with OPENBLAS_CORETYPE={coretype} runs {child.architecture}")
        child.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
