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


# ---- regressions: each once broke the promise that a failed call changes nothing ----

STEPS = {  # name: (call with param p and state list s of p's shape, state count)
    "sgd": (lambda p, s: K.sgd_step(p, np.ones(p.shape, F32), s[0], lr=0.1, momentum=0.9), 1),
    "adagrad": (lambda p, s: K.adagrad_step(p, np.ones(p.shape, F32), s[0]), 1),
    "rmsprop": (lambda p, s: K.rmsprop_step(p, np.ones(p.shape, F32), s[0], grad_avg=s[1],
                                            momentum_buf=s[2], momentum=0.9, centered=True), 3),
    "adam": (lambda p, s: K.adam_step(p, np.ones(p.shape, F32), s[0], s[1]), 2),
}


@pytest.mark.parametrize("name", STEPS)
@pytest.mark.parametrize("role", ["param", "state"])
def test_a_matrix_updated_in_place_is_refused_not_written_past(name, role):
    """np.matrix's reshape(-1) stays 2-D: a kernel given one wrote past the array (a 2x4
    param at the front of a buffer changed the 32 floats after it; 64x64 crashed)."""
    step, states = STEPS[name]
    buf = np.zeros(64, F32)
    p = np.asmatrix(buf[:8].reshape(2, 4)) if role == "param" else np.zeros((2, 4), F32)
    s = [np.zeros((2, 4), F32) for _ in range(states)]
    if role == "state":
        s[0] = np.asmatrix(buf[:8].reshape(2, 4))
    with pytest.raises(TypeError, match="numpy.ndarray itself"):
        step(p, s)
    assert not buf.any()


@pytest.mark.parametrize("call", [
    lambda x: K.activation(x, "relu"), lambda x: K.dropout(x, 0.5, 1),
    lambda x: K.matmul(x, x, trans_b=True), lambda x: K.bias_grad(x),
    lambda x: K.mse(x, x)])
def test_matrices_are_read_as_arrays_and_masked_arrays_refused(call):
    x = np.arange(12, dtype=F32).reshape(3, 4)
    np.testing.assert_array_equal(np.asarray(call(np.asmatrix(x))), np.asarray(call(x)))
    masked = np.ma.masked_array(x, mask=x > 5)[:, ::2]
    with pytest.raises(TypeError, match="masked array"):
        call(masked)


@pytest.mark.parametrize("call", [
    lambda x: K.activation(x, "relu"), lambda x: K.dropout(x, 0.5, 1),
    lambda x: K.matmul(x, x, trans_b=True), lambda x: K.bias_grad(x),
    lambda x: K.mse(x, x)[0], lambda x: K.softmax_cross_entropy(x, [0, 1, 2])[1]])
@pytest.mark.parametrize("dtype", [F32, np.float64])
def test_the_other_byte_order_is_read_as_numpy_reads_it(call, dtype):
    """A big-endian array (a file written on another machine) is copied into this
    machine's order, as a non-contiguous one is, not refused; the result is native."""
    x = np.arange(12, dtype=dtype).reshape(3, 4) / 7
    swapped = x.astype(x.dtype.newbyteorder("S"))
    out = np.asarray(call(swapped))
    assert out.dtype == dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, np.asarray(call(x)))


def test_an_array_in_the_other_byte_order_is_not_updated_in_place():
    p = np.ones(3, F32).astype(np.dtype(F32).newbyteorder("S"))
    with pytest.raises(TypeError, match="byte order"):
        K.sgd_step(p, np.ones(3, F32), lr=0.1)
    np.testing.assert_array_equal(p, np.ones(3))


@pytest.mark.parametrize("call, match", [
    (lambda p, g: K.sgd_step([p], [g], [None], lr=0.1, momentum=0.9, step=2),
     r"momentum_buf\[0\] is None"),
    (lambda p, g: K.rmsprop_step([p], [g], [np.zeros(3, F32)], grad_avg=[None], centered=True),
     r"grad_avg\[0\] is None"),
    (lambda p, g: K.adam_step([p, p.copy()], [g, g], [np.zeros(3, F32), None],
                              [np.zeros(3, F32)] * 2), r"exp_avg\[1\] is None"),
])
def test_none_in_a_state_list_is_refused(call, match):
    """A None entry was used as `param` itself (SGD), gave NaN (centered RMSprop) or failed
    inside Numba after updating the earlier entries (Adam)."""
    p, g = np.ones(3, F32), np.ones(3, F32)
    with pytest.raises(TypeError, match=match):
        call(p, g)
    np.testing.assert_array_equal(p, np.ones(3, F32))


def test_aliased_or_overlapping_buffers_are_refused():
    p, g, m = np.ones(4, F32), np.ones(4, F32), np.zeros(4, F32)
    with pytest.raises(ValueError, match="share memory"):
        K.adam_step(p, g, m, m)  # exp_avg is exp_avg_sq
    with pytest.raises(ValueError, match="share memory"):
        K.sgd_step(p, g, p, lr=0.1, momentum=0.9)  # a state aliasing param
    buf = np.arange(8, dtype=F32)
    with pytest.raises(ValueError, match="param and grad share memory"):
        K.sgd_step(buf[2:6], buf[0:4], lr=0.1)  # grad starts earlier and overlaps
    with pytest.raises(ValueError, match=r"param\[0\] and param\[1\] share memory"):
        K.sgd_step([p, p], [g, g], lr=0.1)
    np.testing.assert_array_equal(buf, np.arange(8, dtype=F32))
    assert (p == 1).all() and (m == 0).all()


@pytest.mark.parametrize("call, match", [
    (lambda p: K.sgd_step(p, np.ones(3, F32), lr=1e39), "lr = 1e.39 overflows float32"),
    (lambda p: K.sgd_step(p, np.ones(3, F32), lr=0.1, weight_decay=1e300),
     "weight_decay = 1e.300 overflows float32"),
    (lambda p: K.adam_step(p, np.zeros(3, F32), np.zeros(3, F32), np.zeros(3, F32), eps=1e-50),
     "eps = 1e-50 rounds to 0 in float32"),
    (lambda p: K.adam_step(p, np.ones(3, F32), np.zeros(3, F32), np.zeros(3, F32), lr=10,
                           weight_decay=1e38, decoupled_weight_decay=True),
     "decay_factor .* overflows"),
    (lambda p: K.sgd_step(p, np.ones(3, F32), lr=10 ** 400), "lr must be finite"),
    (lambda p: K.activation(p, "leaky_relu", alpha=1e39), "alpha .* overflows"),
])
def test_hyper_parameters_are_checked_in_the_dtype_they_are_used_in(call, match):
    p = np.ones(3, F32)
    with pytest.raises(ValueError, match=match):
        call(p)
    assert (p == 1).all()


@pytest.mark.parametrize("name", STEPS)
def test_weight_decay_zero_keeps_an_infinite_parameter_infinite(name):
    """0 * inf = NaN: with weight_decay 0 the decay term is left out, as in PyTorch."""
    step, states = STEPS[name]
    p = np.array([np.inf, -np.inf, 1.0], F32)
    step(p, [np.zeros(3, F32) for _ in range(states)])
    assert p[0] == np.inf and p[1] == -np.inf and np.isfinite(p[2])


def test_a_huge_packing_buffer_is_not_kept():
    """(1, K) @ (K, 1) packs 16 K floats: at K = 2^22 that is 256 MiB, let go after the call."""
    from kernelgrad.kernels.ops import matmul as ops_matmul
    k = 1 << 22
    out = K.matmul(np.ones((1, k), F32), np.ones((k, 1), F32), impl="numba")
    assert out[0, 0] == k
    assert all(b.nbytes <= ops_matmul.SCRATCH_KEEP_BYTES
               for b in ops_matmul._scratch_buffers.values())


def test_check_device_errors_without_cupy_is_a_no_op(monkeypatch):
    import sys
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    K.check_device_errors()  # used to raise ModuleNotFoundError: No module named 'cupy'
