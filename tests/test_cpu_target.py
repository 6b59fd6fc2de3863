"""The CPU kernels are built for the target Numba compiles for, not for the host running
them: cpu_info() reports that target, and its vectors are the target's."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kernelgrad.kernels as K

# (NUMBA_CPU_NAME, vector bytes, registers, fma): targets LLVM knows on any x86-64 host
X86_TARGETS = [("x86-64", 16, 16, False), ("haswell", 32, 16, True),
               ("skylake-avx512", 64, 32, True), ("znver4", 64, 32, True)]


def info_for(name):
    """cpu_info() in a fresh process compiling for `name` (with that CPU's own features)."""
    env = dict(os.environ, NUMBA_CPU_NAME=name, NUMBA_CPU_FEATURES="")
    out = subprocess.run([sys.executable, "-c", "import json, kernelgrad.kernels as K; "
                          "print(json.dumps(K.cpu_info()))"], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def test_cpu_info_describes_the_vectors_in_use():
    info = K.cpu_info()
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        assert info[f"lanes_{name}"] == info["vector_bytes"] // np.dtype(dtype).itemsize >= 2
        rows, columns = map(int, info[f"gemm_tile_{name}"].split("x"))
        # the tile's accumulators plus a row of B and a broadcast of A fit the registers
        vectors = columns // info[f"lanes_{name}"]
        assert rows * vectors + vectors + 1 <= info["vector_registers"]
    assert info["threads"] >= 1


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 target names")
@pytest.mark.parametrize("name, width, registers, fma", X86_TARGETS)
def test_the_compile_target_sets_the_vector_width(name, width, registers, fma):
    info = info_for(name)
    assert info["target"] == name and info["target_from"] == "NUMBA_CPU_NAME"
    assert (info["vector_bytes"], info["vector_registers"], info["fma"]) == (width, registers,
                                                                             fma)
    assert info["lanes_float64"] == width // 8  # 0 here once crashed every float64 GEMM
