"""GEMMs whose C has a short side of at most SKINNY_MAX (matmul_skinny.py): a
perceptron's matrix-vector products, their gradients, one sample's layer."""
import itertools

import numpy as np
import pytest

from kernelgrad.kernels import reference as R
from kernelgrad.kernels.cpu import matmul_skinny as S
from kernelgrad.kernels.ops import matmul as matmul_ops

from conftest import DTYPES, assert_close

GEMM_RTOL = {np.float32: 1e-6, np.float64: 1e-14}
TRANSPOSES = list(itertools.product((False, True), repeat=2))
PAD = 64  # NaN elements around every operand and output


def padded(values):
    """values (C-contiguous) inside a buffer with PAD NaNs before and after: a kernel that
    reads past the operand meets NaN (and its result shows it), one that writes past it
    changes the NaNs."""
    buf = np.full(values.size + 2 * PAD, np.nan, values.dtype)
    inside = buf[PAD: PAD + values.size].reshape(values.shape)
    inside[...] = values
    return buf, inside


def run_kernel(a, b, m, n, trans_a, trans_b, parts, build, bias=None, act=0):
    dtype = a.dtype
    a_buf, a_in = padded(a)
    b_buf, b_in = padded(b)
    c_buf, c = padded(np.full((m, n), np.nan, dtype))
    k = a.shape[0] if trans_a else a.shape[1]
    scratch = np.full(S.scratch_size(m, n, k, dtype, parts), np.nan, dtype)
    has_epilogue = bias is not None or act != 0
    bias = np.zeros(n, dtype) if bias is None else bias
    build(a_in, b_in, c, bias, has_epilogue, act, dtype.type(0.01), trans_a, trans_b, parts,
          scratch)
    for buf in (a_buf, b_buf, c_buf):
        assert np.isnan(buf[:PAD]).all() and np.isnan(buf[-PAD:]).all(), "written outside"
    return c


# (M, N, K): every short side 1..4 on either side of C, long sides that leave every
# remainder of four rows and of a vector, K below, at and past a vector's lanes
SHAPES = [(p, q, k) for q in (1, 2, 3, 4) for p, k in ((1, 2), (5, 7), (37, 16), (130, 33),
                                                      (67, 300))]
SHAPES += [(q, p, k) for p, q, k in SHAPES if p != q]
# wider Cs than SKINNY_COLUMNS: the kernel is right for any short side (the segments'
# sums then split among more q), whichever products the plans send it
SHAPES += [(p, q, k) for q in (6, 8, 12) for p, k in ((12, 5), (70, 129), (300, 40))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_skinny_kernel_against_the_reference(rng, dtype, trans_a, trans_b):
    """Every shape, layout and part count (parts run one after another where the pool has
    fewer threads), serial and parallel builds bit-identical, nothing read or written
    outside the operands."""
    for m, n, k in SHAPES:
        a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
        ref = R.matmul(a, b, trans_a, trans_b)
        scale = R.matmul(np.abs(a), np.abs(b), trans_a, trans_b)
        first = None
        for parts in (1, 2, 3):
            for build in (S.skinny.serial, S.skinny.parallel):
                c = run_kernel(a, b, m, n, trans_a, trans_b, parts, build)
                assert_close(c, ref, GEMM_RTOL[dtype] * np.sqrt(k), scale,
                             f"skinny {m}x{n}x{k} ta={trans_a} tb={trans_b} parts={parts}")
                if first is None:
                    first = c
                assert np.array_equal(c, first), "the result depends on the thread count"


def test_plans_route_a_short_side_here():
    """The CPU plans (matmul, linear and its backward) send these products to this kernel:
    the linear layer's cases in test_matmul.py (batch 1, 4; 1 or 3 outputs) run here."""
    f32 = np.dtype(np.float32)
    for m, n, k, skinny in [(300, 1, 129, True), (1, 100, 257, True), (4, 37, 70, True),
                            (64, 6, 33, True), (64, 10, 33, False), (512, 1024, 1, False)]:
        assert matmul_ops.Gemm(m, n, k, False, False, f32, True, 1, np.float32(0),
                               "numba").skinny == skinny


def test_which_products_are_skinny():
    assert S.is_skinny(512, 1, 1024) and S.is_skinny(1, 1024, 512)
    assert S.is_skinny(1000, S.SKINNY_MAX, 7) and S.is_skinny(S.SKINNY_MAX, 1000, 7)
    assert not S.is_skinny(S.SKINNY_MAX + 1, 1000, 7)
    assert S.is_skinny(1000, S.SKINNY_COLUMNS, 7)
    assert not S.is_skinny(1000, S.SKINNY_COLUMNS + 1, 7)
    assert not S.is_skinny(512, 1024, 1)  # an outer product: the packed GEMM
