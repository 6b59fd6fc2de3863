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


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 target names")
def test_an_empty_target_name_is_the_generic_cpu_as_numba_compiles_it():
    """NUMBA_CPU_NAME="" makes Numba compile for LLVM's generic CPU, not the host: the
    vectors must be that target's (taking the host's name here once gave kernels 64-byte
    vectors that LLVM then split into SSE code, four times slower)."""
    info = info_for("")
    assert info["target"] == "generic" and info["target_from"] == "NUMBA_CPU_NAME"
    assert (info["vector_bytes"], info["vector_registers"], info["fma"]) == (16, 16, False)


# Compiles the GEMM's micro-kernels for a target (in a fresh process and cache: Numba
# shows no assembly for a cached function) and prints, for each one's k loop (the block
# with the most multiplies, up to its jump back), the vector registers it uses and how
# often it moves one to or from the stack (a spill).
ASSEMBLY_PROBE = r"""
import json, re
from numba import types
from kernelgrad.kernels.cpu import matmul as mm
out = {}
for name, nb in (("float32", types.float32), ("float64", types.float64)):
    arr = types.Array(nb, 1, "C")
    i = types.int64
    far = (mm.MR, False, mm.NV, True)
    for (rows, strided, vectors, far_args), kernel in [
            (key + (False,), k) for key, k in mm.MICRO_KERNELS.items()] + [(far, mm._far_kernel)]:
        a = (arr, i, i) if strided else (arr, i)
        sig = (i,) + a + (arr, i, arr, i, i, i, types.boolean)
        if far_args:  # the requests for the next B slice and C rows
            sig += (i, i, arr, i, i, i)
        kernel.compile(sig)
        blocks = re.split(r"\n(?=\.LBB)", kernel.inspect_asm(sig))
        ops = r"\b(vfmadd\w*|mulp[sd]|vmulp[sd])\b"
        # the k loop: the block with the most multiplies (the far kernel's three loops:
        # the three such blocks), each up to the jump back to its label
        most = max(len(re.findall(ops, b)) for b in blocks)
        labels = [(b, b.split(":", 1)[0]) for b in blocks if len(re.findall(ops, b)) == most]
        loops = [b[:b.find(label, len(label))] for b, label in labels]
        key = f"{name} {rows}x{vectors}{' in place' if strided else ''}{' far' if far_args else ''}"
        out[key] = {
            "tile_vectors": rows * vectors,
            "loops": len(loops),
            "multiplies": min(len(re.findall(ops, hot)) for hot in loops),
            "registers": sorted(set(r for hot in loops
                                    for r in re.findall(r"%(zmm|ymm|xmm)\d+", hot))),
            # vector spills: a stack slot read or written with a vector register (the 12
            # row pointers of an A read in place may leave one general register on the
            # stack in a target's unrolled loop: one load per two k steps)
            "stack": sum(len([line for line in hot.splitlines()
                              if "(%rsp)" in line and re.search(r"%[xyz]mm", line)])
                         for hot in loops)}
print(json.dumps(out))
"""


@pytest.mark.assembly
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 assembly")
@pytest.mark.parametrize("name, width, registers, fma", X86_TARGETS)
def test_the_micro_kernel_fills_the_target_registers_without_spilling(tmp_path, name, width,
                                                                      registers, fma):
    """Compiled, not run (a host without AVX-512 still checks the AVX-512 build): every
    micro-kernel's k loop (each row count, packed or in place, full or one vector wide)
    does its multiply-adds on the target's widest registers and never spills one to the
    stack."""
    env = dict(os.environ, NUMBA_CPU_NAME=name, NUMBA_CPU_FEATURES="",
               NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", ASSEMBLY_PROBE], env=env, capture_output=True,
                         text=True, check=True).stdout
    register = {64: "zmm", 32: "ymm", 16: "xmm"}[width]
    loops = json.loads(out)
    rows, columns = map(int, info_for(name)["gemm_tile_float32"].split("x"))
    assert f"float32 {rows}x{columns * 4 // width}" in loops, loops.keys()  # the tile's kernel
    assert loops[f"float32 {rows}x{columns * 4 // width} far"]["loops"] == 3
    for kernel, loop in loops.items():
        # a whole tile's worth of multiply-adds at least
        assert loop["multiplies"] >= loop["tile_vectors"], (kernel, loop)
        assert loop["registers"] == [register], (kernel, loop)
        assert loop["stack"] == 0, (kernel, loop)
