"""matmul and linear (GEMM with bias and activation epilogue) against the reference."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numba import from_dtype, njit

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R
from kernelgrad.kernels.cpu._simd import lanes_of, vtranspose_copy

from conftest import AWKWARD, DTYPES, assert_close, linear_tolerances

GEMM_RTOL = {np.float32: 1e-6, np.float64: 1e-14}
SHAPES = ([(m, n, k) for m in AWKWARD for n in (1, 33, 127) for k in (1, 7, 1000)]
          + [(4096, 3, 17), (3, 2049, 40), (513, 1, 300)])  # tall, wide, K=1 among them


def gemm_tolerance(dtype, k):
    return GEMM_RTOL[dtype] * np.sqrt(k)


def operands(rng, m, n, k, dtype, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def check_matmul(rng, m, n, k, dtype, trans_a, trans_b, impl="numba"):
    a, b = operands(rng, m, n, k, dtype, trans_a, trans_b)
    out = K.matmul(a, b, trans_a, trans_b, impl=impl)
    assert out.dtype == dtype and out.shape == (m, n)
    scale = R.matmul(np.abs(a), np.abs(b), trans_a, trans_b)  # the GEMM error bound's scale
    assert_close(out, R.matmul(a, b, trans_a, trans_b), gemm_tolerance(dtype, k), scale,
                 f"matmul {m}x{n}x{k} {dtype.__name__} ta={trans_a} tb={trans_b} {impl}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_matmul_shapes(rng, m, n, k, dtype):
    check_matmul(rng, m, n, k, dtype, False, False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m,n,k", [(33, 127, 1000), (1000, 7, 33), (1, 1, 1), (127, 1000, 1)])
def test_matmul_transposed(rng, m, n, k, dtype, trans_a, trans_b):
    check_matmul(rng, m, n, k, dtype, trans_a, trans_b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("m,n,k", [(257, 784, 513), (1000, 65, 300), (600, 20, 700)])
def test_matmul_blocks_and_edges(rng, m, n, k, dtype, trans_a, trans_b):
    """Several row blocks per thread, several KC blocks with a ragged last one, edge tiles
    in both M and N, and a C one panel wide (A read in place): the whole loop nest."""
    check_matmul(rng, m, n, k, dtype, trans_a, trans_b)


@pytest.mark.parametrize("m,n,k", [(33, 127, 1000), (1, 1, 1)])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)])
def test_matmul_blas_impl(rng, m, n, k, trans_a, trans_b):
    check_matmul(rng, m, n, k, np.float32, trans_a, trans_b, impl="blas")


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 300), n=st.integers(1, 300), k=st.integers(1, 600),
       trans_a=st.booleans(), trans_b=st.booleans(), single=st.booleans(),
       seed=st.integers(0, 2 ** 32 - 1))
def test_matmul_hypothesis_shapes(m, n, k, trans_a, trans_b, single, seed):
    check_matmul(np.random.default_rng(seed), m, n, k, np.float32 if single else np.float64,
                 trans_a, trans_b)


@pytest.mark.parametrize("impl", ["numba", "blas"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, *K.ACTIVATIONS])
@pytest.mark.parametrize("batch,fan_in,fan_out", [(1, 1, 1), (33, 127, 7), (127, 300, 1000)])
def test_linear_forward_and_backward(rng, dtype, activation, batch, fan_in, fan_out, impl):
    x = rng.standard_normal((batch, fan_in)).astype(dtype)
    w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(dtype)
    b = rng.standard_normal(fan_out).astype(dtype)
    y, z = K.linear(x, w, b, activation, return_preact=True, impl=impl)
    y_ref, z_ref = R.linear(x, w, b, activation)
    dy = rng.standard_normal(y.shape).astype(dtype)
    z_tol, y_tol, grad_tols = linear_tolerances(x, w, b, activation, 0.01, y, z, dy)
    tol = gemm_tolerance(dtype, fan_in) * 2
    assert_close(z, z_ref, tol, **z_tol, what="linear preact")
    assert_close(K.linear(x, w, b, activation, impl=impl), y_ref, tol, **y_tol,
                 what=f"linear {activation}")
    assert_close(y, y_ref, tol, **y_tol, what=f"linear (return_preact) {activation}")

    grads = K.linear_backward(dy, x, w, y, activation, preact=z, impl=impl)
    refs = R.linear_backward(dy, x, w, y, activation, preact=z)
    for name, got, ref, k, kw in zip(("dx", "dw", "db"), grads, refs, (fan_out, batch, batch),
                                     grad_tols):
        assert_close(got, ref, gemm_tolerance(dtype, k) * 4, **kw, what=f"linear_backward {name}")
    assert K.linear_backward(dy, x, w, y, activation, preact=z, need_input_grad=False,
                             impl=impl)[0] is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_without_bias(rng, dtype):
    x = rng.standard_normal((7, 33)).astype(dtype)
    w = rng.standard_normal((33, 5)).astype(dtype)
    assert_close(K.linear(x, w, None, "relu"), R.linear(x, w, None, "relu")[0],
                 gemm_tolerance(dtype, 33), what="linear no bias")


def test_non_contiguous_inputs_are_copied(rng):
    a = rng.standard_normal((40, 60))[:, ::2]
    b = rng.standard_normal((30, 9))
    assert_close(K.matmul(a, b), a @ b, 1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,width", [("all", "all"), (3, "all"), ("all", 12), (5, 12), (1, 1)])
def test_register_transpose_block(rng, dtype, rows, width):
    """The packing's lanes x lanes register transpose alone: offsets and strides that are
    not multiples of anything, source rows past `rows` read as zeros (and not read), and
    nothing outside the `width` x lanes block written."""
    @njit
    def copy(src, src_off, src_ld, rows, dst, dst_off, dst_ld, width):
        vtranspose_copy(src, src_off, src_ld, rows, dst, dst_off, dst_ld, width)

    n = lanes_of(from_dtype(np.dtype(dtype)))
    rows = n if rows == "all" else rows
    width = n if width == "all" else min(width, n)
    a = rng.standard_normal((3 + rows, n + 3)).astype(dtype)  # nothing past row `rows`
    out = np.full((n + 2) * (n + 7), np.nan, dtype)
    copy(a.reshape(-1), 3 * (n + 3) + 2, n + 3, rows, out, 5, n + 7, width)
    block = out[5: 5 + n * (n + 7)].reshape(n, n + 7)
    want = np.zeros((n, width), dtype)
    used = min(rows, width)
    want[:, :used] = a[3: 3 + used, 2: 2 + n].T
    np.testing.assert_array_equal(block[:, :width], want)
    assert np.isnan(out[:5]).all() and np.isnan(block[:, width:]).all()
    assert np.isnan(out[5 + n * (n + 7):]).all()
