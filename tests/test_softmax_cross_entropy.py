"""Fused softmax cross-entropy against the reference, on every device: awkward shapes,
masked (-inf) and NaN logits, logits of 1e4, bad labels; on the GPU every kernel path."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernelgrad.kernels as K

from conftest import (
    AWKWARD,
    DEVICE_DTYPES,
    DEVICES,
    DTYPES,
    SPECIALS,
    assert_as_on_the_cpu,
    assert_nan_row_only,
    assert_softmax_close,
    gpu_sizes,
    gpu_test,
    nan_logit_inputs,
    on_device,
    softmax_inputs,
    to_host,
)

RTOL = {("cpu", np.float32): 4e-6, ("cpu", np.float64): 1e-12, ("cuda", np.float32): 8e-6}


def check(rng, device, rows, classes, dtype, spread=3.0, masked=0.0):
    logits, labels = softmax_inputs(rng, rows, classes, dtype, spread, masked)
    losses, dlogits = K.softmax_cross_entropy(on_device(logits, device),
                                              on_device(labels, device))
    assert losses.dtype == dtype and losses.shape == (rows,) and dlogits.shape == logits.shape
    assert_softmax_close(to_host(losses), to_host(dlogits), logits, labels,
                         RTOL[device, dtype])
    if device == "cuda":
        K.check_device_errors()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", AWKWARD)
@pytest.mark.parametrize("classes", AWKWARD)
def test_softmax_cross_entropy(rng, rows, classes, dtype):
    check(rng, "cpu", rows, classes, dtype)


@gpu_test
@pytest.mark.parametrize("rows", AWKWARD)
# a warp per row up to 1024 classes; then a block per row, the row in registers (4096:
# 128-bit loads, 1025 and 4099: scalar) up to 32768; past that read twice (32772, 40000)
@pytest.mark.parametrize("classes", gpu_sizes(*AWKWARD, 1024, 1025, 4096, 4099,
                                              large=[32768, 32772, 40000]))
def test_cuda_every_kernel_path(rng, rows, classes):
    check(rng, "cuda", min(rows, (1 << 24) // classes), classes, np.float32)


@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
@pytest.mark.parametrize("classes", [7, 1000, 5000, 5001, 40000])
def test_masked_logits(rng, device, dtype, classes):
    """95% of the logits -inf, never a row's label's: some GPU threads see only -inf."""
    check(rng, device, 33, classes, dtype, masked=0.95)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 200), classes=st.integers(1, 3000), single=st.booleans(),
       spread=st.sampled_from([0.1, 3.0, 100.0]), seed=st.integers(0, 2 ** 32 - 1))
def test_hypothesis_shapes_and_spreads(rows, classes, single, spread, seed):
    check(np.random.default_rng(seed), "cpu", rows, classes,
          np.float32 if single else np.float64, spread)


@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
def test_stable_at_1e4(device, dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [1e4, 1e4, -1e4]], dtype)
    labels = np.array([1, 1, 0])
    losses, dlogits = (to_host(a) for a in K.softmax_cross_entropy(
        on_device(logits, device), on_device(labels, device)))
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(losses, [2e4, 0.0, np.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(dlogits, [[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]], atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("classes", [3, 5000, 5001, 40000])
def test_a_nan_logit_makes_its_row_nan(device, classes):
    """Every dlogit of the row, whichever GPU thread reads the NaN; the other row finite."""
    logits, labels = nan_logit_inputs(classes, np.float32)
    got = K.softmax_cross_entropy(on_device(logits, device), on_device(labels, device))
    assert_nan_row_only(*(to_host(a) for a in got))


@gpu_test
@pytest.mark.parametrize("classes", [10, 5000, 5001, 40000])
def test_cuda_out_of_range_label_is_nan_and_flagged(rng, classes):
    """The host cannot check GPU labels without synchronizing: the kernel makes the row NaN
    and raises a flag that check_device_errors() reports once, then clears."""
    logits = on_device(rng.standard_normal((4, classes)).astype(np.float32), "cuda")
    losses, dlogits = K.softmax_cross_entropy(logits, on_device(np.array([0, classes, -1, 3]),
                                                                "cuda"))
    out = to_host(losses)
    assert np.isnan(out[1]) and np.isnan(out[2]) and np.isfinite(out[[0, 3]]).all()
    assert np.isnan(to_host(dlogits)[1]).all()
    with pytest.raises(ValueError, match="label outside"):
        K.check_device_errors()
    K.check_device_errors()  # the flag was cleared


@gpu_test
def test_cuda_special_values_give_what_the_cpu_gives():
    for classes in (10, 2000, 2001, 40000):  # a warp per row; a block: cached, read twice
        logits = np.zeros((len(SPECIALS), classes), np.float32)
        logits[:, 3], logits[:, 5] = SPECIALS, 1.0
        for label in (3, 5):
            labels = np.full(len(SPECIALS), label)
            got = K.softmax_cross_entropy(on_device(logits, "cuda"), on_device(labels, "cuda"))
            losses, dlogits = K.softmax_cross_entropy(logits, labels)
            # a loss near 0 is log(s) for s near 1: exact to s's rounding, whose size is 1
            assert_as_on_the_cpu(to_host(got[0]), losses, "softmax losses", atol=1e-6)
            # at the label, p - 1 keeps the rounding of p near 1
            onehot = np.zeros_like(dlogits)
            onehot[:, label] = 2 * np.finfo(np.float32).eps
            assert_as_on_the_cpu(to_host(got[1]), dlogits, "softmax dlogits",
                                 atol=onehot + 16 * np.finfo(np.float32).tiny)
