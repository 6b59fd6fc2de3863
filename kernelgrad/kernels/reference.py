"""NumPy oracle for every kernel: plain, obviously right, computed in float64.

Each function takes arrays of any float dtype and returns float64 results; the tests
compare the Numba and CUDA kernels against these. Names mirror kernelgrad.kernels.
"""
import numpy as np

from .philox import dropout_mask

ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "gelu")
_GELU_C = np.sqrt(2.0 / np.pi)


def _f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def _sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))  # 1 / (1 + e^-x) without overflow


def _gelu_inner(x):
    return _GELU_C * (x + 0.044715 * x ** 3)


def matmul(a, b, trans_a=False, trans_b=False):
    a, b = _f64(a, b)
    return (a.T if trans_a else a) @ (b.T if trans_b else b)


def activation(x, name, alpha=0.01):
    (x,) = _f64(x)
    if name is None:
        return x.copy()
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "sigmoid":
        return _sigmoid(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "leaky_relu":
        return np.where(x > 0, x, alpha * x)
    if name == "gelu":
        # 0.5 (1 + tanh(u)) = sigmoid(2u); the left side cancels to nothing for x << 0
        return x * _sigmoid(2.0 * _gelu_inner(x))
    raise ValueError(name)


def activation_backward(dy, saved, name, alpha=0.01):
    """dL/dx given dL/dy; `saved` is the output y, except for gelu where it is the input x."""
    dy, s = _f64(dy, saved)
    if name is None:
        return dy.copy()
    if name == "relu":
        return dy * (s > 0)
    if name == "sigmoid":
        return dy * s * (1.0 - s)
    if name == "tanh":
        return dy * ((1.0 - s) * (1.0 + s))  # 1 - s*s loses all digits as |s| -> 1
    if name == "leaky_relu":
        return dy * np.where(s > 0, 1.0, alpha)
    if name == "gelu":
        # d/dx [x sigmoid(2u)] = sigmoid(2u) + 2 x u' sigmoid(2u) sigmoid(-2u)
        with np.errstate(over="ignore", invalid="ignore"):
            u = _gelu_inner(s)
            du = _GELU_C * (1.0 + 3 * 0.044715 * s * s)
            ds = _sigmoid(2.0 * u) * _sigmoid(-2.0 * u)
            # where ds is 0 so is the term, though s * du may be inf (huge |s|)
            term = np.where(ds == 0, 0.0, 2.0 * s * du * ds)
        return dy * (_sigmoid(2.0 * u) + term)
    raise ValueError(name)


def linear(x, w, b=None, activation_name=None, alpha=0.01):
    """act(x @ w + b) with w of shape (in, out); also returns the pre-activation z."""
    x, w = _f64(x, w)
    z = x @ w
    if b is not None:
        z = z + np.asarray(b, dtype=np.float64)
    return activation(z, activation_name, alpha), z


def linear_backward(dy, x, w, y, activation_name=None, alpha=0.01, preact=None):
    """(dx, dw, db) of y = act(x @ w + b)."""
    saved = preact if activation_name == "gelu" else y
    dz = activation_backward(dy, saved, activation_name, alpha)
    x, w = _f64(x, w)
    return dz @ w.T, x.T @ dz, dz.sum(axis=0)


def softmax_cross_entropy(logits, labels):
    """Per-row loss -log softmax(logits)[label] and dlogits = softmax - onehot."""
    (z,) = _f64(logits)
    labels = np.asarray(labels)
    rows = np.arange(z.shape[0])
    shifted = z - z.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1))
    losses = log_sum - shifted[rows, labels]
    dlogits = np.exp(shifted - log_sum[:, None])
    dlogits[rows, labels] -= 1.0
    return losses, dlogits


def binary_cross_entropy_with_logits(logits, targets):
    """Elementwise loss and its gradient sigmoid(z) - t."""
    z, t = _f64(logits, targets)
    losses = np.maximum(z, 0.0) - z * t + np.log1p(np.exp(-np.abs(z)))
    return losses, activation(z, "sigmoid") - t


def mse(pred, target):
    """Elementwise squared error and its gradient 2 (pred - target)."""
    p, t = _f64(pred, target)
    diff = p - t
    return diff * diff, 2.0 * diff


def dropout(x, p, seed, offset=0):
    (x,) = _f64(x)
    return np.where(dropout_mask(x.shape, p, seed, offset), x / (1.0 - p), 0.0)


def dropout_backward(dy, p, seed, offset=0):
    return dropout(dy, p, seed, offset)


def bias_grad(dy):
    (dy,) = _f64(dy)
    return dy.sum(axis=0)


# Optimizer steps, as torch.optim defines them; `step` counts from 1. Each returns the new
# parameter and the new state, leaving its inputs untouched.

def sgd_step(param, grad, momentum_buf, lr, momentum=0.0, dampening=0.0,
             weight_decay=0.0, nesterov=False, step=1):
    p, g = _f64(param, grad)
    if weight_decay:
        g = g + weight_decay * p
    buf = None
    if momentum:
        buf = g.copy() if step == 1 else momentum * _f64(momentum_buf)[0] + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


def adagrad_step(param, grad, state_sum, lr=0.01, lr_decay=0.0, weight_decay=0.0,
                 eps=1e-10, step=1):
    p, g, s = _f64(param, grad, state_sum)
    if weight_decay:
        g = g + weight_decay * p
    clr = lr / (1 + (step - 1) * lr_decay)
    s = s + g * g
    return p - clr * g / (np.sqrt(s) + eps), s


def rmsprop_step(param, grad, square_avg, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, grad_avg=None, momentum_buf=None):
    p, g, sq = _f64(param, grad, square_avg)
    if weight_decay:
        g = g + weight_decay * p
    sq = alpha * sq + (1 - alpha) * g * g
    ga = None
    if centered:
        ga = alpha * _f64(grad_avg)[0] + (1 - alpha) * g
        # sq >= ga^2 exactly; a difference rounding made negative counts as 0 (NaN stays)
        avg = np.sqrt(np.maximum(sq - ga * ga, 0.0)) + eps
    else:
        avg = np.sqrt(sq) + eps
    buf = None
    if momentum:
        buf = momentum * _f64(momentum_buf)[0] + g / avg
        p = p - lr * buf
    else:
        p = p - lr * g / avg
    return p, sq, ga, buf


def adam_step(param, grad, exp_avg, exp_avg_sq, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, step=1, decoupled_weight_decay=False):
    """Adam, or AdamW when decoupled_weight_decay."""
    p, g, m, v = _f64(param, grad, exp_avg, exp_avg_sq)
    if weight_decay:
        if decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    bias1 = 1 - beta1 ** step
    bias2 = 1 - beta2 ** step
    denom = np.sqrt(v) / np.sqrt(bias2) + eps
    return p - (lr / bias1) * m / denom, m, v
