"""Differentiable ops on Tensors; each runs a kernel for its forward and its backward.

Losses take raw scores (logits) as PyTorch's do, and reduce with "mean" (default),
"sum" or "none". softmax and log_softmax, which no kernel provides because the training
path never materializes probabilities, are NumPy.
"""
import warnings

import numpy as np

from .. import kernels as K
from ..devices import same_device, xp_of
from ..kernels import checks
from ..kernels.checks import probability
from .random import advance_dropout_stream, dropout_stream
from .tensor import (
    Tensor,
    _make,
    _needs,
    is_grad_enabled,
    matmul,  # noqa: F401  (part of this module's API)
)
from .tensor import _as_array as _array

REDUCTIONS = ("mean", "sum", "none")
_converted = set()


def input_like(x, dtype):
    """A layer's input in its parameters' dtype. A NumPy user's float64 array (or an integer
    one) given to a float32 model is converted, with one warning per pair of dtypes and
    process; PyTorch would refuse it, Keras converts it silently."""
    if x.dtype == dtype:
        return x
    if x.dtype.kind not in "fiub":
        raise TypeError(f"the input must hold numbers, got dtype {x.dtype}")
    if (x.dtype, dtype) not in _converted:
        _converted.add((x.dtype, dtype))
        warnings.warn(f"a {x.dtype} input to a {dtype} layer is converted to {dtype} (pass "
                      f"x.astype(np.{dtype.name}) to avoid the copy)", stacklevel=3)
    return x.astype(dtype)


# ---- linear: GEMM + bias + activation, one node ----

def linear(x, weight, bias=None, activation=None, alpha=0.01):
    """act(x @ weight + bias), weight of shape (in, out); x of shape (..., in).

    One kernel runs the forward (bias and activation in the GEMM's epilogue), one the
    backward; `alpha` is leaky_relu's negative slope.
    """
    x_data, w = _array(x), _array(weight)
    b = None if bias is None else _array(bias)
    same_device(x_data, w, *(() if b is None else (b,)))
    if w.ndim != 2 or x_data.ndim < 1 or x_data.shape[-1] != w.shape[0]:
        raise ValueError(f"linear: the input has shape {x_data.shape} and the weight "
                         f"{w.shape}; the input's last dimension must be in_features "
                         f"({w.shape[0] if w.ndim else '?'})")
    x_data = input_like(x_data, w.dtype)
    lead = x_data.shape[:-1]
    x2 = x_data if x_data.ndim == 2 else x_data.reshape(-1, x_data.shape[-1])
    keep_preact = activation == "gelu" and _needs_any(x, weight, bias)
    if keep_preact:
        y, z = K.linear(x2, w, b, activation, alpha, return_preact=True)
    else:
        y, z = K.linear(x2, w, b, activation, alpha), None

    def backward(g):
        g2 = g if g.ndim == 2 else g.reshape(y.shape)
        dx, dw, db = K.linear_backward(g2, x2, w, y, activation, alpha, preact=z,
                                       need_input_grad=_needs(x))
        return (None if dx is None else dx.reshape(x_data.shape)), dw, db
    return _make(y.reshape(lead + (w.shape[1],)), (x, weight, bias), backward)


def _needs_any(*xs):
    return is_grad_enabled() and any(_needs(x) for x in xs)


# ---- activations ----

def _activation(x, name, alpha=0.01):
    x_data = _array(x)
    y = K.activation(x_data, name, alpha)
    saved = x_data if name == "gelu" else y  # gelu's backward needs its input
    return _make(y, (x,), lambda g: (K.activation_backward(g, saved, name, alpha),))


def relu(x):
    return _activation(x, "relu")


def leaky_relu(x, negative_slope=0.01):
    return _activation(x, "leaky_relu", negative_slope)


def sigmoid(x):
    return _activation(x, "sigmoid")


def tanh(x):
    return _activation(x, "tanh")


def gelu(x):
    """GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return _activation(x, "gelu")


# ---- softmax family (NumPy or CuPy; the training path never makes probabilities) ----

def _dim(dim, axis):
    if axis is not None:
        if dim is not None and dim != -1:
            raise TypeError("give dim or axis, not both")
        return axis
    return -1 if dim is None else dim


def softmax(x, dim=None, axis=None):
    a = _array(x)
    xp, dim = xp_of(a), _dim(dim, axis)
    e = xp.exp(a - a.max(axis=dim, keepdims=True))
    s = e / e.sum(axis=dim, keepdims=True)
    return _make(s, (x,), lambda g: (s * (g - (g * s).sum(axis=dim, keepdims=True)),))


def _log_softmax(a, dim):
    """log softmax(a) along dim, on an array (shifted by the maximum: no overflow)."""
    xp = xp_of(a)
    shifted = a - a.max(axis=dim, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))


def log_softmax(x, dim=None, axis=None):
    a = _array(x)
    xp, dim = xp_of(a), _dim(dim, axis)
    out = _log_softmax(a, dim)
    return _make(out, (x,),
                 lambda g: (g - xp.exp(out) * g.sum(axis=dim, keepdims=True),))


# ---- losses ----

def _reduce(losses, grad, reduction, inputs, weights=None):
    """The reduced loss Tensor whose backward scales the kernel's per-element gradient.
    With per-row weights, "mean" divides by their sum (PyTorch's weighted mean)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if reduction == "none":
        extra = (slice(None),) + (None,) * (grad.ndim - losses.ndim)
        return _make(losses, inputs, lambda g: (grad * g[extra],))
    xp = xp_of(losses)
    total = xp.asarray(losses.sum(dtype=losses.dtype))
    if reduction == "sum":
        return _make(total, inputs, lambda g: (grad * g,))
    count = losses.dtype.type(losses.size if weights is None else weights.sum())
    return _make(xp.asarray(total / count), inputs, lambda g: (grad * (g / count),))


def _labels(labels, rows):
    """Integer labels as (N,): a column of labels (N, 1), as Keras takes them, is read as
    (N,)."""
    labels = _array(labels)
    if labels.ndim == 2 and labels.shape == (rows, 1):
        labels = labels.reshape(rows)
    return labels


def cross_entropy(logits, labels, weight=None, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of logits (N, C) against integer labels (N,) (or (N, 1)) in
    [0, C), as torch.nn.functional.cross_entropy: `weight` (C,) weighs each class (the
    mean divides by the weights of the rows' labels), `label_smoothing` mixes the one-hot
    target with the uniform one. Float targets of the logits' shape are class
    probabilities (one-hot rows: Keras's categorical targets), as torch takes them.

    One fused kernel computes every row's loss and dlogits = softmax - onehot; weights and
    smoothing adjust those from the kernel's outputs.
    """
    logits_data = _array(logits)
    labels_data = _labels(labels, logits_data.shape[0] if logits_data.ndim else 0)
    same_device(logits_data, labels_data)
    smoothing = checks.finite(label_smoothing, "label_smoothing", 0.0, 1.0)
    w = None if weight is None else _class_weights(weight, logits_data)
    if (labels_data.dtype.kind == "f" and logits_data.ndim == 2
            and labels_data.shape == logits_data.shape):
        return _cross_entropy_probabilities(logits, logits_data, labels_data, w, smoothing,
                                            reduction)
    losses, dlogits = K.softmax_cross_entropy(logits_data, labels_data)
    if not smoothing and w is None:
        return _reduce(losses, dlogits, reduction, (logits,))
    xp = xp_of(losses)
    rows, classes = logits_data.shape
    index = xp.arange(rows)
    labels_data = labels_data.astype(np.int64)
    row_w = None if w is None else w[labels_data]
    if smoothing:
        # -sum_c q_c log p_c with q = (1 - e) onehot + e / C; log p = x - lse and
        # lse = loss + x[label]; its gradient is p - q = dlogits + e (onehot - 1 / C)
        lse = losses + logits_data[index, labels_data]
        log_p = logits_data - lse[:, None]
        hard = losses if row_w is None else losses * row_w
        soft = -(log_p if w is None else log_p * w).sum(axis=1) / classes
        losses = ((1 - smoothing) * hard + smoothing * soft).astype(logits_data.dtype)
        p = dlogits.copy()
        p[index, labels_data] += 1
        onehot = xp.zeros_like(p)
        onehot[index, labels_data] = 1
        hard_grad = (p - onehot) if row_w is None else (p - onehot) * row_w[:, None]
        soft_grad = (p - 1.0 / classes) if w is None else \
            (p * w.sum() - w) / classes
        dlogits = ((1 - smoothing) * hard_grad + smoothing * soft_grad).astype(dlogits.dtype)
    else:
        losses = losses * row_w
        dlogits = dlogits * row_w[:, None]
    return _reduce(losses, dlogits, reduction, (logits,), row_w)


def _cross_entropy_probabilities(logits, z, targets, w, smoothing, reduction):
    """-sum_c w_c t_c log softmax(z)_c per row for target probabilities t (torch's
    cross_entropy with class-probability targets: the mean divides by the rows); the
    gradient is softmax(z) sum_c w_c t_c - w t."""
    xp = xp_of(z)
    t = targets.astype(z.dtype)
    if smoothing:
        t = (1 - smoothing) * t + smoothing / z.shape[1]
    log_p = _log_softmax(z, 1)
    wt = t if w is None else t * w
    losses = -(wt * log_p).sum(axis=1)
    grad = xp.exp(log_p) * wt.sum(axis=1, keepdims=True) - wt
    return _reduce(losses.astype(z.dtype), grad.astype(z.dtype), reduction, (logits,))


def _class_weights(weight, logits):
    if isinstance(weight, str):
        raise TypeError(f"weight is the per-class weights, got {weight!r}: pass the reduction "
                        "by name (reduction=...)")
    w = _array(weight)
    if w.shape != logits.shape[-1:]:
        raise ValueError(f"weight has shape {w.shape}; it needs one weight per class, "
                         f"({logits.shape[-1]},)")
    return w.astype(logits.dtype)


def nll_loss(log_probs, labels, weight=None, reduction="mean"):
    """The negative log-likelihood of integer labels under log-probabilities (N, C) (e.g.
    from log_softmax), as torch.nn.functional.nll_loss."""
    a = _array(log_probs)
    if a.ndim != 2:
        raise ValueError(f"nll_loss takes log-probabilities (N, C), got shape {a.shape}")
    labels_data = checks.labels_for(_labels(labels, a.shape[0]), *a.shape)
    same_device(a, labels_data)
    if labels_data.size and (labels_data.min() < 0 or labels_data.max() >= a.shape[1]):
        bad = labels_data.min() if labels_data.min() < 0 else labels_data.max()
        raise ValueError(f"label {bad} is outside [0, {a.shape[1]}) for {a.shape[1]} classes")
    xp = xp_of(a)
    index = xp.arange(a.shape[0])
    w = None if weight is None else _class_weights(weight, a)
    row_w = xp.ones(a.shape[0], a.dtype) if w is None else w[labels_data]
    losses = -a[index, labels_data] * row_w
    grad = xp.zeros_like(a)
    grad[index, labels_data] = -row_w
    return _reduce(losses, grad, reduction, (log_probs,), None if w is None else row_w)


def _target_like(target, pred, name):
    """A target of shape (N,) for a prediction (N, 1), or the reverse, is read in the
    prediction's shape (Keras does this; PyTorch's MSE would broadcast them to (N, N))."""
    t = _array(target)
    if t.shape != pred.shape and t.size == pred.size and (
            t.shape + (1,) == pred.shape or pred.shape + (1,) == t.shape):
        t = t.reshape(pred.shape)
    return t


def _target_as(target, pred, name):
    """_target_like, on pred's device and in its dtype (integer or boolean targets
    converted)."""
    t = _target_like(target, pred, name)
    same_device(pred, t)
    if t.dtype != pred.dtype and t.dtype.kind in "biuf":
        t = t.astype(pred.dtype)
    return t


def binary_cross_entropy_with_logits(logits, targets, reduction="mean"):
    """-[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))] for logits z and targets t in [0, 1].

    Integer 0/1 targets are accepted and cast to the logits' dtype.
    """
    z = _array(logits)
    t = _target_as(targets, z, "targets")
    losses, dlogits = K.binary_cross_entropy_with_logits(z, t)
    return _reduce(losses, dlogits, reduction, (logits,))


def binary_cross_entropy(probs, targets, reduction="mean"):
    """-[t log p + (1 - t) log(1 - p)] for probabilities p in [0, 1] (a sigmoid's output),
    as torch.nn.functional.binary_cross_entropy: each log floored at -100, the gradient
    (p - t) / max(p (1 - p), 1e-12). From logits, binary_cross_entropy_with_logits is
    exact where this saturates (and one fused kernel)."""
    p = _array(probs)
    if p.dtype.kind != "f":
        raise TypeError(f"binary_cross_entropy takes float probabilities, got {p.dtype}")
    t = _target_as(targets, p, "targets")
    if t.shape != p.shape:
        raise ValueError(f"targets of shape {t.shape} do not match probabilities {p.shape}")
    xp = xp_of(p)
    if p.size and not bool(((p >= 0) & (p <= 1)).all()):
        raise ValueError("binary_cross_entropy takes probabilities in [0, 1] (a sigmoid's "
                         "output); for raw scores use binary_cross_entropy_with_logits")
    with np.errstate(divide="ignore"):
        log_p, log_q = xp.maximum(xp.log(p), -100), xp.maximum(xp.log1p(-p), -100)
    losses = (-(t * log_p + (1 - t) * log_q)).astype(p.dtype)
    # (PyTorch's floor is the float32 nearest 1e-12, in every dtype)
    grad = ((p - t) / xp.maximum(p * (1 - p), p.dtype.type(np.float32(1e-12)))).astype(p.dtype)
    return _reduce(losses, grad, reduction, (probs,))


def one_hot(labels, num_classes=-1):
    """(N, ...) integer labels as (N, ..., C) int64 rows of zeros with a 1 at the label
    (torch.nn.functional.one_hot); C is the largest label + 1 unless given."""
    a = _array(labels)
    if a.dtype.kind not in "iu":
        raise TypeError(f"one_hot takes integer labels, got {a.dtype}")
    xp = xp_of(a)
    top = int(a.max()) + 1 if a.size else 0
    classes = top if num_classes == -1 else int(num_classes)
    if a.size and (int(a.min()) < 0 or top > classes):
        raise ValueError(f"labels must lie in [0, {classes}), got "
                         f"{int(a.min()) if int(a.min()) < 0 else top - 1}")
    return Tensor((a[..., None] == xp.arange(classes)).astype(np.int64))


def mse_loss(pred, target, reduction="mean"):
    """(pred - target)^2, reduced; the gradient flows to pred (the target is data)."""
    p = _array(pred)
    t = _target_as(target, p, "target")
    losses, dpred = K.mse(p, t)
    return _reduce(losses, dpred, reduction, (pred,))


# ---- dropout ----

def dropout(x, p=0.5, training=True):
    """Inverted dropout: each element is zeroed with probability p and the rest scaled by
    1/(1-p) when training; the identity otherwise. The mask is Philox's, from the
    library's seed (kernelgrad.manual_seed) and a per-call offset; it is never stored."""
    if not training or p == 0:
        probability(p)
        return x if isinstance(x, Tensor) else Tensor(x)
    seed, offset = dropout_stream()
    y = K.dropout(_array(x), p, seed, offset)
    advance_dropout_stream()  # only now: a call that raised takes no offset
    return _make(y, (x,), lambda g: (K.dropout_backward(g, p, seed, offset),))
