"""matmul and linear (GEMM with bias and activation epilogue) against the reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import from_dtype, njit

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R
from kernelgrad.kernels.cpu._simd import lanes_of, vtranspose_copy
from kernelgrad.kernels.cpu.matmul import MR, _pack_panel

from conftest import (
    AWKWARD,
    DTYPES,
    EMULATED,
    SMALL,
    assert_close,
    gpu_test,
    linear_tolerances,
    on_device,
    to_host,
)

F32 = np.float32
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
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
@pytest.mark.parametrize("m,n,k", [(13, 127, 1000), (64, 128, 128), (67, 130, 244),
                                   (127, 200, 129), (5, 2049, 300)])
def test_matmul_small_a_read_in_place(rng, m, n, k, dtype, trans_a, trans_b):
    """An A small enough to be read unpacked (M * K <= DIRECT_A_MAX) with many B panels:
    a short last row panel, several KC blocks, either transpose."""
    from kernelgrad.kernels.cpu.matmul import DIRECT_A_MAX
    assert m * k <= DIRECT_A_MAX
    check_matmul(rng, m, n, k, dtype, trans_a, trans_b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("m,n,k", [(257, 784, 513), (1000, 65, 300), (600, 20, 700)])
def test_matmul_blocks_and_edges(rng, m, n, k, dtype, trans_a, trans_b):
    """Several row blocks per thread, several KC blocks with a ragged last one, edge tiles
    in both M and N, and a C one panel wide (A read in place): the whole loop nest."""
    check_matmul(rng, m, n, k, dtype, trans_a, trans_b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("m,n,k,parts_m,parts_n,local", [
    (257, 100, 300, 2, 1, True),     # each part's rows one block: parts pack their panels
    (2000, 100, 300, 2, 1, False),   # taller parts: B packed once, shared, several blocks
    (2000, 100, 300, 1, 1, False),
    (1000, 300, 600, 2, 1, False),   # B and C past FAR_BYTES: requests in the k loop
    (20, 300, 40, 1, 3, True),       # a short C cut by columns
    (130, 300, 600, 1, 2, True),     # cut by columns, all rows one A block, 3 KC blocks
])
def test_both_ways_of_packing_b(rng, m, n, k, parts_m, parts_n, local, dtype, trans_a,
                                trans_b):
    """The GEMM kernel with a given partition (parts run one after another where the pool
    has fewer threads): B packed once for all parts, or a panel at a time by each part,
    ragged last panels and KC blocks included. The shapes pick the layout they name."""
    from kernelgrad.kernels.cpu.matmul import FAR_BYTES, _scratch_layout, gemm, scratch_size
    assert _scratch_layout(m, n, k, np.dtype(dtype).itemsize, parts_m, parts_n)[0] == local
    if (m, n) == (1000, 300):
        assert (k * n + m * n) * np.dtype(dtype).itemsize > FAR_BYTES
    a, b = operands(rng, m, n, k, dtype, trans_a, trans_b)
    c = np.full((m, n), np.nan, dtype)
    scratch = np.full(scratch_size(m, n, k, dtype, parts_m, parts_n), np.nan, dtype)
    gemm(m * n * k, a, b, c, np.zeros(n, dtype), False, 0, 0.0, trans_a, trans_b, parts_m,
         parts_n, scratch)
    scale = R.matmul(np.abs(a), np.abs(b), trans_a, trans_b)
    assert_close(c, R.matmul(a, b, trans_a, trans_b), gemm_tolerance(dtype, k), scale,
                 f"gemm {m}x{n}x{k} parts {parts_m}x{parts_n}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [2, 3, 4, 6])
def test_partition_covers_c_with_one_part_per_thread(dtype, threads):
    """Every split partition() picks gives each thread a part (none empty) and cuts
    columns only where a part's rows make one A block, the layout that packs its own B
    panels; a C with fewer rows than columns and a small A is cut by columns."""
    from kernelgrad.kernels.cpu.matmul import (
        LOCAL_A_BYTES,
        MR,
        _scratch_layout,
        panel_width,
        partition,
    )
    nr, itemsize = panel_width(dtype), np.dtype(dtype).itemsize
    for m, n, k in [(1, 1, 1), (12, 1024, 256), (64, 1024, 1024), (256, 512, 784),
                    (512, 10, 1024), (784, 512, 256), (2048, 2048, 2048), (100, 7, 3)]:
        parts_m, parts_n = partition(m, n, k, dtype, threads)
        assert parts_m * parts_n <= threads
        assert parts_m <= -(-m // MR) and parts_n <= -(-n // nr)
        local, _, a_size, _ = _scratch_layout(m, n, k, itemsize, parts_m, parts_n)
        if parts_n > 1:
            assert local and a_size * itemsize <= LOCAL_A_BYTES + MR * nr * itemsize
    assert partition(64, 1024, 1024, dtype, 2) == (1, 2)
    assert partition(2048, 2048, 2048, dtype, threads) == (threads, 1)
    assert partition(2 * MR, 2 * nr, 1, dtype, 3) in ((2, 1), (1, 2))  # 2 of 3 threads


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
def test_every_short_last_row_panel(rng, dtype, trans_a):
    """Every count of rows a last row panel can have (1 .. MR), each run by the micro-kernel
    with the fewest rows that covers it: A read in place and packed, a full-width and a
    one-vector last column panel, several KC blocks (the accumulating path)."""
    from kernelgrad.kernels.cpu.matmul import KC, MR, panel_width
    nr = panel_width(dtype)
    for m in range(MR + 1, 2 * MR + 1):
        for n in (2 * nr, nr + 3):
            for k in (5, KC + 7):
                check_matmul(rng, m, n, k, dtype, trans_a, False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,n,k", [(784, 10, 200), (300, 9, 500), (1000, 20, 140)])
def test_a_narrow_weight_gradient_computed_transposed(rng, m, n, k, dtype, trans_b):
    """A^T @ B with C one panel wide and mostly padding (a 10-class layer's x^T dz) is
    computed as C^T = op(B)^T @ A and transposed into C, where the plan says so."""
    from kernelgrad.kernels.cpu.matmul import NV, TRANSPOSE_MIN_A, panel_width
    from kernelgrad.kernels.ops.matmul import Gemm
    nr = panel_width(dtype)
    lanes = nr // NV
    plan = Gemm(m, n, k, True, trans_b, np.dtype(dtype), False, 0, dtype(0), "numba")
    expected = n <= nr and 5 * n < 4 * (-(-n // lanes) * lanes) and m * k >= TRANSPOSE_MIN_A
    assert (plan.swapped is not None) == expected
    check_matmul(rng, m, n, k, dtype, True, trans_b)
    a, b = operands(rng, m, n, k, dtype, True, trans_b)
    dz = np.ascontiguousarray(b.T) if trans_b else b  # x = a, (batch k, fan_in m)
    grads = K.linear_backward(dz, a, np.ones((m, n), dtype), None,
                              impl="numba")  # dw = x^T dz: the same product
    assert_close(grads[1], R.matmul(a, b, True, trans_b), gemm_tolerance(dtype, k),
                 R.matmul(np.abs(a), np.abs(b), True, trans_b), "linear_backward dw")


@pytest.mark.parametrize("m,n,k", [(33, 127, 1000), (1, 1, 1)])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)])
def test_matmul_blas_impl(rng, m, n, k, trans_a, trans_b):
    check_matmul(rng, m, n, k, np.float32, trans_a, trans_b, impl="blas")


@pytest.mark.parametrize("impl", ["numba", "blas", "auto"])
@pytest.mark.parametrize("m,n,k", [(64, 128, 128), (300, 200, 400)])  # serial, parallel
def test_a_repeated_call_runs_its_plan(rng, m, n, k, impl):
    """The second call of a signature takes the plan the first one recorded (no checks
    again): the same results as the first, through every implementation, for matmul
    and for linear with and without a bias."""
    for _ in range(3):
        check_matmul(rng, m, n, k, np.float32, False, False, impl=impl)
        x, w = operands(rng, m, n, k, np.float32, False, False)
        b = rng.standard_normal(n).astype(np.float32)
        for bias in (b, None):
            want = R.linear(x, w, bias, "relu")[0]
            scale = np.abs(x).astype(np.float64) @ np.abs(w) + np.abs(b)
            assert_close(K.linear(x, w, bias, activation="relu", impl=impl), want,
                         gemm_tolerance(np.float32, k), scale,
                         f"linear {impl} bias={bias is b}")


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
@pytest.mark.parametrize("batch,fan_in,fan_out", [
    (1, 1, 1), (33, 127, 7), (127, 300, 1000),
    # a short side (matmul_skinny.py): a binary classifier, one sample, a batch of four,
    # and a 7-wide C (33, 127, 7 above) stays on the packed GEMM
    (300, 129, 1), (64, 33, 3), (1, 257, 100), (4, 70, 37)])
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


@pytest.mark.parametrize("impl", ["numba", "blas"])
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,fan_in,fan_out", [(7, 33, 5), (64, 128, 1000)])
def test_linear_without_bias(rng, dtype, activation, impl, batch, fan_in, fan_out):
    """No bias: nothing is added, whatever the activation (the epilogue once added a
    one-element zero bias across every column, reading past its end)."""
    x = rng.standard_normal((batch, fan_in)).astype(dtype)
    w = rng.standard_normal((fan_in, fan_out)).astype(dtype)
    ref = R.linear(x, w, None, activation)[0]
    tol = gemm_tolerance(dtype, fan_in)
    assert_close(K.linear(x, w, None, activation, impl=impl), ref, tol, what="linear no bias")
    y, z = K.linear(x, w, None, activation, return_preact=True, impl=impl)
    assert_close(y, ref, tol, what="linear no bias (return_preact)")
    assert_close(z, R.linear(x, w, None, None)[0], tol, what="linear no bias preact")


def test_non_contiguous_inputs_are_copied(rng):
    a = rng.standard_normal((40, 60))[:, ::2]
    b = rng.standard_normal((30, 9))
    assert_close(K.matmul(a, b), a @ b, 1e-13)


@pytest.mark.parametrize("impl", ["numba", "blas"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(7, 9, 5), (128, 128, 128), (300, 200, 400)])
def test_transposed_views_are_read_in_place(rng, m, n, k, dtype, impl):
    """`a.T` and `w.T` views of C-contiguous arrays run as the transpose flags do: the
    same bytes as the flags give (Numba packs the same panels), every combination of
    view and flag, for matmul and for linear with PyTorch's (out, in) weight; a square
    operand passed both ways in turn keeps the two calls' plans apart."""
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    at, bt = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
    tol = gemm_tolerance(dtype, k)
    for _ in range(2):  # the second time through the recorded plans
        for ta in (False, True):
            for tb in (False, True):
                x = (at.T if ta else a)  # a view when ta: the flag flips, not a copy
                y = (bt.T if tb else b)
                want = K.matmul(at if ta else a, bt if tb else b, ta, tb, impl=impl)
                got = K.matmul(x, y, impl=impl)
                assert_close(got, R.matmul(a, b), tol, what=f"matmul views {ta}{tb}")
                if impl == "numba":
                    np.testing.assert_array_equal(got, want)
                # a view given with the flag set: op() of the view
                assert_close(K.matmul(x.T, y.T, True, True, impl=impl), R.matmul(a, b), tol,
                             what=f"matmul views and flags {ta}{tb}")
        weight = rng.standard_normal((n, k)).astype(dtype)  # PyTorch's (out, in)
        bias = rng.standard_normal(n).astype(dtype)
        want = R.linear(a, weight.T, bias, "relu")[0]
        got = K.linear(a, weight.T, bias, "relu", impl=impl)
        assert_close(got, want, tol * 2, what="linear weight.T")
        if impl == "numba":
            np.testing.assert_array_equal(
                got, K.linear(a, np.ascontiguousarray(weight.T), bias, "relu", impl=impl))
        dy = rng.standard_normal((m, n)).astype(dtype)
        grads = K.linear_backward(dy, a, weight.T, got, "relu", impl=impl)
        refs = R.linear_backward(dy, a, weight.T, got, "relu")
        for name, g, r, depth in zip(("dx", "dw", "db"), grads, refs, (n, m, m)):
            assert_close(g, r, gemm_tolerance(dtype, depth) * 4, what=f"{name} with weight.T")
        square = rng.standard_normal((k, k)).astype(dtype)
        for w in (square, square.T, square):
            assert_close(K.linear(a, w, None, impl=impl), R.linear(a, w, None, None)[0],
                         tol * 2, what="linear square w and w.T in turn")
            assert_close(K.matmul(a, w, impl=impl), R.matmul(a, np.ascontiguousarray(w)),
                         tol, what="matmul square w and w.T in turn")
    with pytest.raises(ValueError, match=r"w has shape \(%d, %d\)" % (k + 1, n)):
        K.linear(a, rng.standard_normal((n, k + 1)).astype(dtype).T)  # the view's shape


def test_a_transposed_view_is_not_copied(rng, monkeypatch):
    """The views take the flags' path: nothing makes a contiguous copy of them."""
    a = rng.standard_normal((70, 50)).astype(F32)
    weight = rng.standard_normal((30, 50)).astype(F32)
    want = (K.matmul(a, weight, trans_b=True), K.linear(a, np.ascontiguousarray(weight.T)))

    def no_copy(*args, **kwargs):
        raise AssertionError("a transposed view was copied")
    monkeypatch.setattr(np, "ascontiguousarray", no_copy)
    np.testing.assert_array_equal(K.matmul(a, weight.T, impl="numba"), want[0])
    np.testing.assert_array_equal(K.matmul(a.T.T, weight.T, impl="numba"), want[0])
    np.testing.assert_array_equal(K.linear(a, weight.T, impl="numba"), want[1])
    dy = rng.standard_normal((70, 30)).astype(F32)
    got = K.linear_backward(dy, a, weight.T, None, impl="numba")
    np.testing.assert_array_equal(got[0], K.matmul(dy, weight, impl="numba"))
    np.testing.assert_array_equal(got[1], K.matmul(a, dy, trans_a=True, impl="numba"))


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


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_panel_pack(rng, dtype):
    """One MR-row panel of a row-major A, packed [k][MR] by register transposes: where MR
    is narrower than a vector, the stores run into the next k's row, which must be written
    over, and never past the panel (its neighbours are NaN here). Depths around the lane
    count, short panels included."""
    n = lanes_of(from_dtype(np.dtype(dtype)))
    for kc in (1, n - 1, n, n + 1, 2 * n, 3 * n + 2, 64):
        for rows in (MR, MR - 1, 1):
            a = rng.standard_normal((rows + 2, kc + 5)).astype(dtype)
            room = np.full(MR * kc + 2 * n + 3, np.nan, dtype)
            panel = room[3: 3 + MR * kc]
            _pack_panel(a.reshape(-1), a.shape[1] + 2, a.shape[1], 1, rows, MR, kc, panel)
            want = np.zeros((kc, MR), dtype)
            want[:, :rows] = a[1: 1 + rows, 2: 2 + kc].T
            np.testing.assert_array_equal(panel.reshape(kc, MR), want, f"kc {kc} rows {rows}")
            assert np.isnan(room[:3]).all() and np.isnan(room[3 + MR * kc:]).all()


OUR_GEMMS = ["cuda-tiled", "cuda-regblock", "cuda-tf32"]
# (1200, 300, 9): a grid of 10 x 3 tiles of 128 (38 x 10 of 32), short in both directions
GEMM_SHAPES = ([(1, 1, 1), (7, 33, 7), (33, 127, 1000), (130, 129, 9), (127, 1, 33),
                (256, 384, 264), (1200, 300, 9)]
               if SMALL else
               [(m, n, k) for m in AWKWARD for n in (1, 33, 127) for k in (1, 7, 1000)]
               + [(256, 384, 264), (130, 129, 9), (4096, 3, 17), (3, 2049, 40), (513, 1, 300),
                  (1200, 300, 9)])


# float32 GEMM near 1e-6 sqrt(K); the tensor-core rungs round their inputs
# (TF32: 2^-11 relative), so each product is off by about twice that.
def gemm_rtol(impl, k):
    return {"cuda-tf32": 1e-3}.get(impl, 0.0) + 2e-6 * np.sqrt(k)


@gpu_test
@pytest.mark.parametrize("impl", OUR_GEMMS + ["cublas", "auto"])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,n,k", GEMM_SHAPES)
@pytest.mark.parametrize("misalign", [False, True])
def test_cuda_matmul(rng, m, n, k, trans_a, trans_b, impl, misalign):
    if misalign and impl not in ("cuda-regblock", "cuda-tf32"):
        pytest.skip("only the 128-bit-load rungs have an unaligned path")
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(F32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(F32)
    out = K.matmul(on_device(a, "cuda", misalign), on_device(b, "cuda", misalign), trans_a,
                   trans_b, impl=impl)
    scale = R.matmul(np.abs(a), np.abs(b), trans_a, trans_b)
    assert_close(to_host(out), R.matmul(a, b, trans_a, trans_b), gemm_rtol(impl, k), scale,
                 f"{impl} {m}x{n}x{k} ta={trans_a} tb={trans_b}")


@pytest.mark.parametrize("impl", ["cuda-tiled", "cuda-regblock", "cuda-tf32"])
def test_cuda_gemm_dimensions_keep_headroom_below_int32(impl):
    """The rungs' int32 loops step up to a tile past their last index ((K + 31) / 32,
    k0 += 32): a dimension within a tile of 2**31 would wrap. The front-end refuses it,
    naming the limit, and takes the largest dimension that is safe."""
    from kernelgrad.kernels._spec import CUDA_GEMM_MAX_DIM, cuda_gemm_refusal
    assert CUDA_GEMM_MAX_DIM + 128 < 2 ** 31
    assert cuda_gemm_refusal(impl, 1, 1, CUDA_GEMM_MAX_DIM) is None
    assert cuda_gemm_refusal(impl, CUDA_GEMM_MAX_DIM, 1, 1) is None
    for shape in [(1, 1, 2 ** 31 - 32), (2 ** 31 - 4, 1, 1), (1, 1, CUDA_GEMM_MAX_DIM + 1)]:
        assert "at most 2147483519" in cuda_gemm_refusal(impl, *shape)
    assert cuda_gemm_refusal("cublas", 1, 1, 2 ** 31 + 5) is None


@gpu_test
def test_the_tensor_core_pipeline_is_the_deepest_that_fits_the_device():
    import cupy

    from kernelgrad.kernels.cuda import matmul as cuda_matmul
    device = cupy.cuda.Device()
    limit = device.attributes["MaxSharedMemoryPerBlockOptin"]
    stages = cuda_matmul.tc_stages(device.id)
    assert stages * cuda_matmul.TC_STAGE_BYTES <= limit
    assert all(s * cuda_matmul.TC_STAGE_BYTES > limit for s in cuda_matmul.TC_STAGES
               if s > stages)


@gpu_test
@pytest.mark.skipif(SMALL, reason="8.4M-row operands")
@pytest.mark.parametrize("impl", OUR_GEMMS)
def test_a_gemm_taller_than_65535_row_tiles(rng, impl):
    """M's tiles run along grid.x: along y, where a 2-D grid allows 65535 blocks, one row
    of tiles more than this would not launch."""
    if EMULATED and impl == "cuda-tf32":
        pytest.skip("65536 tensor-core blocks take minutes on the emulator")
    rows = 65535 * (32 if impl == "cuda-tiled" else 128) + 1
    a = rng.integers(-3, 4, (rows, 2)).astype(F32)
    b = rng.integers(-3, 4, (2, 3)).astype(F32)
    # small integers: exact in TF32 too
    out = K.matmul(on_device(a, "cuda"), on_device(b, "cuda"), impl=impl)
    np.testing.assert_array_equal(to_host(out), a @ b)


@gpu_test
@pytest.mark.parametrize("impl, columns", [("cuda-tiled", 65535 * 32),
                                           ("cuda-regblock", 65535 * 128)])
def test_a_gemm_wider_than_a_rung_takes_is_refused(impl, columns):
    a = on_device(np.ones((1, 1), F32), "cuda")
    b = on_device(np.ones((1, columns + 1), F32), "cuda")
    with pytest.raises(ValueError, match=f"at most {columns} output columns"):
        K.matmul(a, b, impl=impl)


@gpu_test
@pytest.mark.parametrize("impl", OUR_GEMMS + ["cublas"])
@pytest.mark.parametrize("fan_out", [7, 1000])
def test_cuda_linear_without_bias(rng, impl, fan_out):
    x = rng.standard_normal((33, 127)).astype(F32)
    w = (rng.standard_normal((127, fan_out)) / np.sqrt(127)).astype(F32)
    y = K.linear(on_device(x, "cuda"), on_device(w, "cuda"), None, "leaky_relu", impl=impl)
    scale = R.matmul(np.abs(x), np.abs(w))
    assert_close(to_host(y), R.linear(x, w, None, "leaky_relu")[0], 2 * gemm_rtol(impl, 127),
                 scale, "linear without bias")


@gpu_test
@pytest.mark.parametrize("impl", OUR_GEMMS + ["cublas"])
@pytest.mark.parametrize("activation", [None, *K.ACTIVATIONS])
@pytest.mark.parametrize("batch,fan_in,fan_out", [(1, 1, 1), (33, 127, 7), (127, 300, 1000)])
def test_cuda_linear_forward_and_backward(rng, activation, batch, fan_in, fan_out, impl):
    x = rng.standard_normal((batch, fan_in)).astype(F32)
    w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(F32)
    b = rng.standard_normal(fan_out).astype(F32)
    xd, wd, bd = (on_device(a, "cuda") for a in (x, w, b))
    y, z = K.linear(xd, wd, bd, activation, return_preact=True, impl=impl)
    y_ref, z_ref = R.linear(x, w, b, activation)
    dy = rng.standard_normal(y.shape).astype(F32)
    z_tol, y_tol, grad_tols = linear_tolerances(x, w, b, activation, 0.01, to_host(y),
                                                to_host(z), dy)
    tol = 2 * gemm_rtol(impl, fan_in)
    assert_close(to_host(z), z_ref, tol, **z_tol, what="linear preact")
    assert_close(to_host(K.linear(xd, wd, bd, activation, impl=impl)), y_ref, tol, **y_tol,
                 what=f"linear {activation}")
    grads = K.linear_backward(on_device(dy, "cuda"), xd, wd, y, activation, preact=z, impl=impl)
    refs = R.linear_backward(dy, x, w, to_host(y), activation, preact=to_host(z))
    for name, got, ref, k, kw in zip(("dx", "dw", "db"), grads, refs, (fan_out, batch, batch),
                                     grad_tols):
        assert_close(to_host(got), ref, 4 * gemm_rtol(impl, k), **kw,
                     what=f"linear_backward {name}")
