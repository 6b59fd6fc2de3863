"""Binary cross-entropy with logits and MSE against the reference, on every device."""
import numpy as np
import pytest

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R

from conftest import (
    DEVICE_DTYPES,
    ELEMENTWISE_RTOL,
    SPECIALS,
    assert_as_on_the_cpu,
    assert_close,
    bce_scales,
    gpu_sizes,
    gpu_test,
    on_device,
    to_host,
)

SHAPES = [(1,), (7,), (33, 127), (1000,)]
GPU_SLACK = {"cpu": 1, "cuda": 2}  # the GPU's expf and log1pf are a little less exact


@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
@pytest.mark.parametrize("shape", SHAPES + gpu_sizes(large=[(1 << 20,)]))
def test_binary_cross_entropy_with_logits(rng, device, dtype, shape):
    logits = (rng.standard_normal(shape) * 5).astype(dtype)
    targets = rng.random(shape).astype(dtype)
    losses, dlogits = K.binary_cross_entropy_with_logits(on_device(logits, device),
                                                         on_device(targets, device))
    ref_losses, ref_dlogits = R.binary_cross_entropy_with_logits(logits, targets)
    loss_terms, grad_terms = bce_scales(logits, targets)  # the terms cancel
    rtol = ELEMENTWISE_RTOL[dtype] * 2 * GPU_SLACK[device]
    assert_close(to_host(losses), ref_losses, rtol, loss_terms, what="bce loss")
    assert_close(to_host(dlogits), ref_dlogits, rtol, grad_terms, what="bce grad")


@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
def test_binary_cross_entropy_is_stable_for_large_logits(device, dtype):
    logits = np.array([1e4, -1e4, 50.0, -50.0], dtype)
    targets = np.array([0.0, 1.0, 1.0, 0.0], dtype)
    losses, dlogits = (to_host(a) for a in K.binary_cross_entropy_with_logits(
        on_device(logits, device), on_device(targets, device)))
    np.testing.assert_allclose(losses, [1e4, 1e4, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(dlogits, [1.0, -1.0, 0.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7, 1), (33, 127), (1000,)])
def test_mse(rng, device, dtype, shape):
    pred = rng.standard_normal(shape).astype(dtype)
    target = rng.standard_normal(shape).astype(dtype)
    losses, dpred = K.mse(on_device(pred, device), on_device(target, device))
    ref_losses, ref_dpred = R.mse(pred, target)
    assert_close(to_host(losses), ref_losses, ELEMENTWISE_RTOL[dtype], what="mse loss")
    assert_close(to_host(dpred), ref_dpred, ELEMENTWISE_RTOL[dtype], what="mse grad")


@gpu_test
def test_cuda_special_values_give_what_the_cpu_gives():
    z = np.repeat(SPECIALS, 4)
    t = np.tile(np.array([0.0, 1.0, 0.3, 1.0], np.float32), len(SPECIALS))
    for fn in (K.binary_cross_entropy_with_logits, K.mse):
        for got, want in zip(fn(on_device(z, "cuda"), on_device(t, "cuda")), fn(z, t)):
            assert_as_on_the_cpu(to_host(got), want, fn.__name__)
