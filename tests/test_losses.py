"""Fused softmax cross-entropy, BCE with logits and MSE against the reference."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R

from conftest import (AWKWARD, DTYPES, ELEMENTWISE_RTOL, assert_close, assert_softmax_close,
                      assert_nan_row_only, bce_scales, nan_logit_inputs, softmax_inputs)

SOFTMAX_RTOL = {np.float32: 4e-6, np.float64: 1e-12}


def check_softmax_cross_entropy(rng, rows, classes, dtype, spread=3.0, masked=0.0):
    logits, labels = softmax_inputs(rng, rows, classes, dtype, spread, masked)
    losses, dlogits = K.softmax_cross_entropy(logits, labels)
    assert losses.dtype == dtype and losses.shape == (rows,)
    assert_softmax_close(losses, dlogits, logits, labels, SOFTMAX_RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", AWKWARD)
@pytest.mark.parametrize("classes", AWKWARD)
def test_softmax_cross_entropy(rng, rows, classes, dtype):
    check_softmax_cross_entropy(rng, rows, classes, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("classes", [7, 1000, 5000])
def test_softmax_cross_entropy_with_masked_logits(rng, classes, dtype):
    check_softmax_cross_entropy(rng, 33, classes, dtype, masked=0.95)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 200), classes=st.integers(1, 3000), single=st.booleans(),
       spread=st.sampled_from([0.1, 3.0, 100.0]), seed=st.integers(0, 2 ** 32 - 1))
def test_softmax_cross_entropy_hypothesis(rows, classes, single, spread, seed):
    check_softmax_cross_entropy(np.random.default_rng(seed), rows, classes,
                                np.float32 if single else np.float64, spread)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_is_stable_at_1e4(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [1e4, 1e4, -1e4]], dtype)
    labels = np.array([1, 1, 0])
    losses, dlogits = K.softmax_cross_entropy(logits, labels)
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(losses, [2e4, 0.0, np.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(dlogits, [[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]], atol=1e-7)


@pytest.mark.parametrize("classes", [3, 5000])
def test_softmax_cross_entropy_nan_logit_makes_its_row_nan(classes):
    logits, labels = nan_logit_inputs(classes, np.float32)
    assert_nan_row_only(*K.softmax_cross_entropy(logits, labels))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7,), (33, 127), (1000,)])
def test_binary_cross_entropy_with_logits(rng, dtype, shape):
    logits = (rng.standard_normal(shape) * 5).astype(dtype)
    targets = rng.random(shape).astype(dtype)
    losses, dlogits = K.binary_cross_entropy_with_logits(logits, targets)
    ref_losses, ref_dlogits = R.binary_cross_entropy_with_logits(logits, targets)
    loss_terms, grad_terms = bce_scales(logits, targets)
    assert_close(losses, ref_losses, ELEMENTWISE_RTOL[dtype] * 2, loss_terms, what="bce loss")
    assert_close(dlogits, ref_dlogits, ELEMENTWISE_RTOL[dtype] * 2, grad_terms, what="bce grad")


def test_binary_cross_entropy_is_stable_for_large_logits():
    logits = np.array([1e4, -1e4, 50.0, -50.0], np.float32)
    targets = np.array([0.0, 1.0, 1.0, 0.0], np.float32)
    losses, dlogits = K.binary_cross_entropy_with_logits(logits, targets)
    np.testing.assert_allclose(losses, [1e4, 1e4, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(dlogits, [1.0, -1.0, 0.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7, 1), (33, 127), (1000,)])
def test_mse(rng, dtype, shape):
    pred = rng.standard_normal(shape).astype(dtype)
    target = rng.standard_normal(shape).astype(dtype)
    losses, dpred = K.mse(pred, target)
    ref_losses, ref_dpred = R.mse(pred, target)
    assert_close(losses, ref_losses, ELEMENTWISE_RTOL[dtype], what="mse loss")
    assert_close(dpred, ref_dpred, ELEMENTWISE_RTOL[dtype], what="mse grad")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (7, 33), (1000, 127), (33, 1000)])
def test_bias_grad(rng, dtype, shape):
    dy = rng.standard_normal(shape).astype(dtype)
    assert_close(K.bias_grad(dy), R.bias_grad(dy), ELEMENTWISE_RTOL[dtype] * np.sqrt(shape[0]),
                 what="bias_grad")
