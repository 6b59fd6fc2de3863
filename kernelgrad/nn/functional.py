"""Differentiable ops on Tensors; each runs a kernel for its forward and its backward.

Losses take raw scores (logits) as PyTorch's do, and reduce with "mean" (default),
"sum" or "none". softmax and log_softmax, which no kernel provides because the training
path never materializes probabilities, are NumPy.
"""
import warnings

import numpy as np

from .. import kernels as K
from ..devices import same_device, xp_of
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


# ---- softmax family (NumPy) ----

def softmax(x, axis=-1):
    a = _array(x)
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    s = e / e.sum(axis=axis, keepdims=True)
    return _make(s, (x,), lambda g: (s * (g - (g * s).sum(axis=axis, keepdims=True)),))


def log_softmax(x, axis=-1):
    a = _array(x)
    shifted = a - a.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return _make(out, (x,),
                 lambda g: (g - np.exp(out) * g.sum(axis=axis, keepdims=True),))


# ---- losses ----

def _reduce(losses, grad, reduction, inputs):
    """The reduced loss Tensor whose backward scales the kernel's per-element gradient."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if reduction == "none":
        extra = (slice(None),) + (None,) * (grad.ndim - losses.ndim)
        return _make(losses, inputs, lambda g: (grad * g[extra],))
    xp = xp_of(losses)
    total = xp.asarray(losses.sum(dtype=losses.dtype))
    if reduction == "sum":
        return _make(total, inputs, lambda g: (grad * g,))
    count = losses.size
    return _make(xp.asarray(total / count), inputs, lambda g: (grad * (g / count),))


def cross_entropy(logits, labels, reduction="mean"):
    """Softmax cross-entropy of logits (N, C) against integer labels (N,) in [0, C).

    One fused kernel computes every row's loss and dlogits = softmax - onehot.
    """
    logits_data, labels_data = _array(logits), _array(labels)
    same_device(logits_data, labels_data)
    losses, dlogits = K.softmax_cross_entropy(logits_data, labels_data)
    return _reduce(losses, dlogits, reduction, (logits,))


def binary_cross_entropy_with_logits(logits, targets, reduction="mean"):
    """-[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))] for logits z and targets t in [0, 1].

    Integer 0/1 targets are accepted and cast to the logits' dtype.
    """
    z, t = _array(logits), _array(targets)
    same_device(z, t)
    if t.dtype != z.dtype and t.dtype.kind in "biu":
        t = t.astype(z.dtype)
    losses, dlogits = K.binary_cross_entropy_with_logits(z, t)
    return _reduce(losses, dlogits, reduction, (logits,))


def mse_loss(pred, target, reduction="mean"):
    """(pred - target)^2, reduced; the gradient flows to pred (the target is data)."""
    p, t = _array(pred), _array(target)
    same_device(p, t)
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
