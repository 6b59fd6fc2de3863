"""Every public kernel function rejects bad input with a clear exception before running."""
import numpy as np
import pytest

import kernelgrad.kernels as K

F32 = np.float32


def ones(*shape, dtype=F32):
    return np.ones(shape, dtype)


@pytest.mark.parametrize("call,error,match", [
    (lambda: K.matmul(ones(3, 4), ones(5, 2)), ValueError, r"\(3, 4\).*\(5, 2\)"),
    (lambda: K.matmul(ones(3, 4), ones(3, 4), trans_b=True), None, None),
    (lambda: K.matmul(ones(3, 4), ones(4, 2, dtype=np.float64)), TypeError, "float32.*float64"),
    (lambda: K.matmul(ones(3, 4).astype(np.int32), ones(4, 2)), TypeError, "int32"),
    (lambda: K.matmul(ones(4), ones(4, 2)), ValueError, "2-D"),
    (lambda: K.matmul(ones(0, 4), ones(4, 2)), ValueError, "empty"),
    (lambda: K.linear(ones(3, 4), ones(5, 2)), ValueError, r"\(3, 4\).*\(5, 2\)"),
    (lambda: K.linear(ones(3, 4), ones(4, 2), ones(3)), ValueError, r"b has shape \(3,\)"),
    (lambda: K.linear(ones(3, 4), ones(4, 2), activation="swish"), ValueError, "swish"),
    (lambda: K.linear(ones(3, 4), ones(4, 2), activation="leaky_relu", alpha=float("nan")),
     ValueError, "alpha"),
    (lambda: K.linear_backward(ones(3, 3), ones(3, 4), ones(4, 2), ones(3, 2)), ValueError,
     r"dy \(3, 3\)"),
    (lambda: K.linear_backward(ones(3, 2), ones(3, 4), ones(4, 2), None, "gelu"), ValueError,
     "preact"),
    (lambda: K.activation(ones(3), "softplus"), ValueError, "softplus"),
    (lambda: K.activation_backward(ones(3), ones(4), "relu"), ValueError, r"\(3,\).*\(4,\)"),
    (lambda: K.softmax_cross_entropy(ones(3, 4), [0, 1, 4]), ValueError, r"label 4.*\[0, 4\)"),
    (lambda: K.softmax_cross_entropy(ones(3, 4), [0, -1, 2]), ValueError, "label -1"),
    (lambda: K.softmax_cross_entropy(ones(3, 4), [0.0, 1.0, 2.0]), TypeError, "integers"),
    (lambda: K.softmax_cross_entropy(ones(3, 4), [0, 1]), ValueError, r"\(2,\).*3 rows"),
    (lambda: K.softmax_cross_entropy(ones(0, 4), np.zeros(0, int)), ValueError, "empty"),
    (lambda: K.binary_cross_entropy_with_logits(ones(3), ones(4)), ValueError, r"\(3,\).*\(4,\)"),
    (lambda: K.mse(ones(3, 1), ones(3)), ValueError, r"\(3, 1\).*\(3,\)"),
    (lambda: K.dropout(ones(3), 1.0, seed=0), ValueError, "p"),
    (lambda: K.dropout(ones(3), -0.1, seed=0), ValueError, "p"),
    (lambda: K.dropout(ones(3), float("nan"), seed=0), ValueError, "finite"),
    (lambda: K.dropout(ones(3), 0.5, seed=-1), ValueError, "seed"),
    (lambda: K.dropout(ones(3), 0.5, seed=1.5), TypeError, "seed"),
    (lambda: K.dropout_backward(ones(3), 0.5, seed=0, offset=2 ** 64), ValueError, "offset"),
    (lambda: K.bias_grad(ones(5)), ValueError, "2-D"),
    (lambda: K.sgd_step(ones(3), ones(4), lr=0.1), ValueError, r"\(4,\).*\(3,\)"),
    (lambda: K.sgd_step(ones(3), ones(3), lr=float("inf")), ValueError, "lr"),
    (lambda: K.sgd_step(ones(3), ones(3), lr=0.1, momentum=0.9), ValueError, "momentum_buf"),
    (lambda: K.sgd_step(ones(3), ones(3), lr=0.1, nesterov=True), ValueError, "nesterov"),
    (lambda: K.sgd_step(ones(3), ones(3), lr=0.1, step=0), ValueError, "step"),
    (lambda: K.sgd_step([1.0, 2.0], ones(2), lr=0.1), TypeError, "param"),
    (lambda: K.sgd_step(ones(4)[::2], ones(2), lr=0.1), ValueError, "contiguous"),
    (lambda: K.adam_step(ones(3), ones(3), ones(3), ones(3), beta1=1.0), ValueError, "beta1"),
    (lambda: K.adam_step(ones(3), ones(3), ones(3), ones(3), eps=float("nan")), ValueError, "eps"),
    (lambda: K.adam_step(ones(3), ones(3), ones(2), ones(3)), ValueError, "exp_avg"),
    (lambda: K.adam_step(ones(3), ones(3), ones(3, dtype=np.float64), ones(3)), TypeError,
     "exp_avg"),
    (lambda: K.adagrad_step(ones(3), ones(3), ones(3), lr=-1.0), ValueError, "lr"),
    (lambda: K.rmsprop_step(ones(3), ones(3), ones(3), centered=True), ValueError, "grad_avg"),
    (lambda: K.rmsprop_step(ones(3), ones(3), ones(3), alpha=2.0), ValueError, "alpha"),
    (lambda: K.sgd_step([], [], lr=0.1), ValueError, "empty list"),
    (lambda: K.sgd_step([ones(3)], ones(3), lr=0.1), TypeError, "grad must be a list"),
    (lambda: K.adam_step([ones(3), ones(2)], [ones(3)], [ones(3)] * 2, [ones(3)] * 2),
     ValueError, "list of 2 arrays but grad is a list of 1"),
    (lambda: K.adam_step([ones(3), ones(2)], [ones(3)] * 2, [ones(3), ones(2)], [ones(3)] * 2),
     ValueError, r"grad\[1\] has shape \(3,\) but param\[1\] has shape \(2,\)"),
])
def test_bad_input_raises_before_any_kernel(call, error, match):
    if error is None:
        call()  # a control case that must not raise
        return
    with pytest.raises(error, match=match):
        call()


def test_failed_step_leaves_param_untouched():
    param = np.arange(3, dtype=F32)
    with pytest.raises(ValueError):
        K.adam_step(param, np.ones(3, F32), np.zeros(3, F32), np.zeros(2, F32), lr=1.0)
    np.testing.assert_array_equal(param, np.arange(3, dtype=F32))


def test_failed_list_step_leaves_every_param_untouched():
    """All entries are checked before the first is updated."""
    good, bad = np.arange(3, dtype=F32), np.arange(2, dtype=F32)
    with pytest.raises(ValueError, match=r"exp_avg_sq\[1\]"):
        K.adam_step([good, bad], [np.ones(3, F32), np.ones(2, F32)],
                    [np.zeros(3, F32), np.zeros(2, F32)], [np.zeros(3, F32), np.zeros(3, F32)])
    np.testing.assert_array_equal(good, np.arange(3, dtype=F32))
