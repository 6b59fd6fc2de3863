"""The five activations, forward and backward, against the reference, on every device."""
import numpy as np
import pytest

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R

from conftest import (
    AWKWARD,
    DEVICES,
    DTYPES,
    ELEMENTWISE_RTOL,
    SPECIALS,
    activation_tolerances,
    assert_as_on_the_cpu,
    assert_close,
    gpu_sizes,
    gpu_test,
    on_device,
    to_host,
)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", K.ACTIVATIONS)
@pytest.mark.parametrize("shape", [(n,) for n in AWKWARD] + [(33, 127), (3, 7, 1000), (1 << 16,),
                                   ((1 << 18) + 37,)])  # past PREFETCH_MIN, ragged
def test_forward_and_backward(rng, dtype, name, shape):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    y = K.activation(x, name, alpha=0.05)
    assert y.dtype == dtype and y.shape == shape
    dy = rng.standard_normal(shape).astype(dtype)
    fwd_tol, bwd_tol = activation_tolerances(x, dy, name, 0.05)
    assert_close(y, R.activation(x, name, 0.05), ELEMENTWISE_RTOL[dtype], **fwd_tol,
                 what=f"{name} fwd")
    saved = x if name == "gelu" else y
    dx = K.activation_backward(dy, saved, name, alpha=0.05)
    assert_close(dx, R.activation_backward(dy, saved, name, 0.05), ELEMENTWISE_RTOL[dtype] * 2,
                 **bwd_tol, what=f"{name} bwd")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu", "gelu"])
def test_every_output_offset_in_a_cache_line(rng, dtype, name):
    """The in-cache loops write a head up to the output's first 64-byte boundary, then the
    rest: outputs starting at every element of a line, shorter and longer than that head,
    are written in full and nowhere else."""
    from kernelgrad.kernels.cpu import activations as cpu
    from kernelgrad.kernels.ops._common import activation_id
    act, alpha = activation_id(name), dtype(0.05)
    line = 64 // np.dtype(dtype).itemsize
    base = np.empty(4096, np.uint8)
    start = -base.ctypes.data % 64  # bytes to the first boundary
    for offset in range(line):
        for n in (1, line - 1, line + 3, 100):
            x = (rng.standard_normal(n) * 4).astype(dtype)
            dy = rng.standard_normal(n).astype(dtype)
            buf = base[start:].view(dtype)
            buf[:] = np.nan
            out = buf[offset: offset + n]
            cpu.activation_forward[act].serial(x, out, alpha)
            assert_close(out, R.activation(x, name, 0.05), ELEMENTWISE_RTOL[dtype],
                         **activation_tolerances(x, dy, name, 0.05)[0], what=name)
            saved = x if name == "gelu" else out.copy()
            out[:] = np.nan
            cpu.activation_backward[act].serial(dy, saved, out, alpha)
            assert_close(out, R.activation_backward(dy, saved, name, 0.05),
                         ELEMENTWISE_RTOL[dtype] * 2,
                         **activation_tolerances(x, dy, name, 0.05)[1], what=name)
            outside = np.r_[buf[:offset], buf[offset + n:]]
            assert np.isnan(outside).all(), f"wrote outside the output at offset {offset}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", K.ACTIVATIONS)
def test_dense_grid(dtype, name):
    """Every x in [-30, 30] at a step of 3e-5, so the tails and the zeros of f' are always
    covered, not only when a random draw reaches them (a draw at x = -10 once found the
    backward tolerance missing gelu's conditioning)."""
    x = np.linspace(-30, 30, 2_000_001).astype(dtype)
    dy = np.random.default_rng(0).standard_normal(x.shape).astype(dtype)
    fwd_tol, bwd_tol = activation_tolerances(x, dy, name, 0.05)
    assert_close(K.activation(x, name, alpha=0.05), R.activation(x, name, 0.05),
                 ELEMENTWISE_RTOL[dtype], **fwd_tol, what=f"{name} fwd")
    saved = x if name == "gelu" else K.activation(x, name, alpha=0.05)
    assert_close(K.activation_backward(dy, saved, name, alpha=0.05),
                 R.activation_backward(dy, saved, name, 0.05), ELEMENTWISE_RTOL[dtype] * 2,
                 **bwd_tol, what=f"{name} bwd")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", K.ACTIVATIONS)
def test_extreme_inputs(dtype, name):
    """Saturation without overflow, and NaN in -> NaN out."""
    x = np.array([-1e4, -100, -30, -1e-7, 0, 1e-7, 30, 100, 1e4, np.inf, -np.inf, np.nan], dtype)
    y = K.activation(x, name)
    ref = R.activation(x, name)
    assert np.isnan(y[-1])
    finite = np.isfinite(ref)
    assert np.all(np.isfinite(y[finite]))
    # tiny results (e.g. sigmoid(-100) ~ 4e-44) are compared absolutely
    np.testing.assert_allclose(y[finite], ref[finite], rtol=ELEMENTWISE_RTOL[dtype], atol=1e-30)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_is_within_a_few_ulp_and_saturates(dtype):
    """The vectorized exp under sigmoid, gelu, softmax and BCE, against NumPy's (in float64
    or longdouble) over every normal result, and its edges: 0 below the smallest normal
    result, inf past the largest, NaN for NaN."""
    from numba import njit

    from kernelgrad.kernels.cpu._math import fast_exp

    @njit
    def exp_all(x, out):
        for i in range(x.size):
            out[i] = fast_exp(x[i])

    info = np.finfo(dtype)
    lo, hi = np.log(np.float64(info.tiny)), np.log(np.float64(info.max))
    x = np.linspace(lo, hi, 1_000_001).astype(dtype)
    x = x[(x >= lo) & (x < hi - 0.35)]  # 2^n overflows a little early in the last ~ln 2/2
    got = np.empty_like(x)
    exp_all(x, got)
    want = np.exp(x.astype(np.longdouble if dtype == np.float64 else np.float64))
    ulps = np.abs(got - want) / np.spacing(want.astype(dtype)).astype(want.dtype)
    limit = 2.0 if dtype == np.float32 else 3.0  # float64: 2.3 at x = 611 (the 2^n product)
    assert ulps.max() <= limit, f"max error {float(ulps.max()):.2f} ulp at x = {x[ulps.argmax()]}"

    edges = np.array([-np.inf, -1e30, lo - 1, hi + 0.01, hi + 1, 1e30, np.inf, np.nan, 0.0,
                      -0.0], dtype)
    got = np.empty_like(edges)
    exp_all(edges, got)
    np.testing.assert_array_equal(got, [0, 0, 0, np.inf, np.inf, np.inf, np.inf, np.nan, 1, 1])


@pytest.mark.parametrize("name", K.ACTIVATIONS)
def test_small_arguments_keep_relative_accuracy(name):
    """No cancellation near 0 (tanh(x) ~ x, not 1 - 2/(e^2x + 1))."""
    x = np.array([1e-6, -3e-5, 2e-3, -0.1], np.float32)
    np.testing.assert_allclose(K.activation(x, name), R.activation(x, name), rtol=2e-6)


@pytest.mark.parametrize("misalign", [False, True])
@pytest.mark.parametrize("name", K.ACTIVATIONS)
@pytest.mark.parametrize("shape", gpu_sizes(*[(n,) for n in AWKWARD], (33, 127),
                                            large=[(1 << 20,)]))
@gpu_test
def test_cuda_forward_and_backward(rng, name, shape, misalign):
    device = "cuda"
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    y = K.activation(on_device(x, device, misalign), name, alpha=0.05)
    assert y.shape == shape and y.dtype == np.float32
    dy = rng.standard_normal(shape).astype(np.float32)
    fwd_tol, bwd_tol = activation_tolerances(x, dy, name, 0.05)
    rtol = ELEMENTWISE_RTOL[np.float32]
    assert_close(to_host(y), R.activation(x, name, 0.05), rtol * 2, **fwd_tol, what=f"{name} fwd")
    saved = x if name == "gelu" else to_host(y)
    dx = K.activation_backward(on_device(dy, device, misalign), on_device(saved, device), name,
                               alpha=0.05)
    assert_close(to_host(dx), R.activation_backward(dy, saved, name, 0.05), rtol * 4, **bwd_tol,
                 what=f"{name} bwd")


@pytest.mark.parametrize("device", DEVICES)
def test_special_values_give_what_the_reference_gives(device):
    """Each device against the float64 reference, not only against each other: an error
    both share (GELU's gradient was NaN past |x| ~ 5e19 on both) shows only this way."""
    x = np.concatenate([SPECIALS, np.array([1e20, -1e20, 6e19, -6e19, 1e30], np.float32)])
    dy = np.resize(np.array([1.0, -2.0, 0.5], np.float32), x.size)
    for name in K.ACTIVATIONS:
        y = to_host(K.activation(on_device(x, device), name, 0.05))
        with np.errstate(all="ignore"):
            assert_as_on_the_cpu(y, R.activation(x, name, 0.05), f"{name} forward")
        saved = x if name == "gelu" else y
        got = K.activation_backward(on_device(dy, device), on_device(saved, device), name, 0.05)
        with np.errstate(all="ignore"):
            want = R.activation_backward(dy, saved, name, 0.05)
        assert_as_on_the_cpu(to_host(got), want, f"{name} backward")


@gpu_test
def test_cuda_special_values_give_what_the_cpu_gives():
    device = "cuda"
    x = np.tile(SPECIALS, 5)
    dy = np.tile(np.array([1.0, -2.0, 0.5], np.float32), 25)
    for name in K.ACTIVATIONS:
        y = K.activation(x, name, 0.05)
        assert_as_on_the_cpu(to_host(K.activation(on_device(x, device), name, 0.05)), y,
                             f"{name} forward")
        saved = x if name == "gelu" else y
        got = K.activation_backward(on_device(dy, device), on_device(saved, device), name, 0.05)
        assert_as_on_the_cpu(to_host(got), K.activation_backward(dy, saved, name, 0.05),
                             f"{name} backward")
