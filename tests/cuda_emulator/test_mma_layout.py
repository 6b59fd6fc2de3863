"""The emulator's mma.sync against a fragment table that is not ours.

ptx.h (the emulator) and ptx.cuh (the GPU) were written from one reading of the PTX ISA,
and the GEMM tests only prove that the two agree. mma_fragments.json holds CUTLASS's
layouts of the same instruction as data; here fragments laid out by that table go
through the emulator's mma, and D must be A B + C where the table says each element is.
Swapping two registers in both of our files would pass the GEMM tests and fail this one.
"""
import json
import pathlib

import numpy as np
import pytest

from kernelgrad.kernels._spec import cuda_defines
from kernelgrad.kernels.cuda import _module

import cuda_emulator as emulator

pytestmark = pytest.mark.skipif(not emulator.available(), reason="needs g++")

TABLE = json.loads((pathlib.Path(__file__).with_name("mma_fragments.json")).read_text())
PROBE = """
extern "C" __global__ void mma_probe(const float* a, const float* b, const float* c,
                                     float* d) {
    int lane = threadIdx.x;
    u32 ar[4], br[2];
    float acc[4];
    for (int r = 0; r < 4; ++r) ar[r] = to_tf32(a[lane * 4 + r]);
    for (int r = 0; r < 2; ++r) br[r] = to_tf32(b[lane * 2 + r]);
    for (int r = 0; r < 4; ++r) acc[r] = c[lane * 4 + r];
    mma_tf32(acc, ar, br);
    for (int r = 0; r < 4; ++r) d[lane * 4 + r] = acc[r];
}
"""


def _flatten(shape, stride):
    """A mode's (size, stride) pairs, first mode fastest."""
    if isinstance(shape, int):
        return [(shape, stride)]
    return [pair for s, d in zip(shape, stride) for pair in _flatten(s, d)]


def element_of(layout, thread, value):
    """(row, column) of the operand element that `thread` holds as its register `value`."""
    offset = 0
    for mode, index in zip(range(2), (thread, value)):
        for size, stride in _flatten(layout["shape"][mode], layout["stride"][mode]):
            offset += index % size * stride
            index //= size
    return offset % layout["rows"], offset // layout["rows"]


def fragments(name, registers):
    layout = TABLE[name]
    return [[element_of(layout, t, v) for v in range(registers)] for t in range(32)]


@pytest.mark.parametrize("name, registers, rows, cols",
                         [("A", 4, 16, 8), ("B", 2, 8, 8), ("C", 4, 16, 8)])
def test_the_table_covers_each_element_once(name, registers, rows, cols):
    seen = sorted(e for lane in fragments(name, registers) for e in lane)
    assert seen == [(r, c) for r in range(rows) for c in range(cols)]


def test_the_emulators_mma_follows_the_table():
    from cuda_emulator import cupy_shim as shim
    rng = np.random.default_rng(0)
    a = rng.integers(-4, 5, (16, 8)).astype(np.float32)       # M x K
    b = rng.integers(-4, 5, (8, 8)).astype(np.float32)        # K x N
    c = rng.integers(-9, 10, (16, 8)).astype(np.float32)      # M x N
    a_frag = np.array([[a[m, k] for m, k in lane] for lane in fragments("A", 4)], np.float32)
    # B's table indexes it N x K: element (n, k)
    b_frag = np.array([[b[k, n] for n, k in lane] for lane in fragments("B", 2)], np.float32)
    c_frag = np.array([[c[m, n] for m, n in lane] for lane in fragments("C", 4)], np.float32)
    d = shim.empty(32 * 4)
    module = emulator.Module(cuda_defines() + (_module.SOURCE_DIR / "common.cuh").read_text()
                             + "// begin ptx.cuh\n// end ptx.cuh\n" + PROBE, ["mma_probe"])
    shim._Function(module, "mma_probe")((1,), (32,), (shim.asarray(a_frag.ravel()),
                                                    shim.asarray(b_frag.ravel()),
                                                    shim.asarray(c_frag.ravel()), d))
    expected = a @ b + c  # small integers: exact in TF32 and float32
    want = np.array([[expected[m, n] for m, n in lane] for lane in fragments("C", 4)])
    np.testing.assert_array_equal(d.get().reshape(32, 4), want)
