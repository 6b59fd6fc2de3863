"""The five activations, forward and backward, against the reference."""
import numpy as np
import pytest

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R

from conftest import AWKWARD, DTYPES, ELEMENTWISE_RTOL, assert_close


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", K.ACTIVATIONS)
@pytest.mark.parametrize("shape", [(n,) for n in AWKWARD] + [(33, 127), (3, 7, 1000), (1 << 16,)])
def test_forward_and_backward(rng, dtype, name, shape):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    y = K.activation(x, name, alpha=0.05)
    assert y.dtype == dtype and y.shape == shape
    # A kernel rounding its intermediates in `dtype` is exact for an input perturbed by a
    # relative rtol, so it may be off by rtol |x f'(x)|: large where f is ill-conditioned,
    # e.g. gelu's tail, whose exp(2u) turns u's rounding into a relative error of 2|u| eps.
    # Subnormal intermediates flush to zero, and gelu multiplies one by |x| (< 64 here).
    y_ref = R.activation(x, name, 0.05)
    slope = R.activation_backward(np.ones(shape), x if name == "gelu" else y_ref, name, 0.05)
    assert_close(y, y_ref, ELEMENTWISE_RTOL[dtype], scale=np.abs(x * slope),
                 atol=64 * np.finfo(dtype).tiny, what=f"{name} fwd")
    dy = rng.standard_normal(shape).astype(dtype)
    saved = x if name == "gelu" else y
    dx = K.activation_backward(dy, saved, name, alpha=0.05)
    assert_close(dx, R.activation_backward(dy, saved, name, 0.05), ELEMENTWISE_RTOL[dtype] * 2,
                 what=f"{name} bwd")


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


@pytest.mark.parametrize("name", K.ACTIVATIONS)
def test_small_arguments_keep_relative_accuracy(name):
    """No cancellation near 0 (tanh(x) ~ x, not 1 - 2/(e^2x + 1))."""
    x = np.array([1e-6, -3e-5, 2e-3, -0.1], np.float32)
    np.testing.assert_allclose(K.activation(x, name), R.activation(x, name), rtol=2e-6)
