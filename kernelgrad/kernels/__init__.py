"""The kernel library: one public function per op.

Each function validates its arguments once (raising before any kernel runs), allocates
its outputs, and runs the Numba CPU kernel for NumPy arrays or the CUDA kernel for CuPy
arrays (all of one call's arrays on one device). NumPy inputs may be float32 or float64
(one dtype per call), CuPy inputs float32; non-contiguous inputs are copied, while arrays
updated in place (optimizer state) must be C-contiguous. Gradients returned by the loss
functions are those of the *sum* of the per-element losses.
"""
import importlib

import numpy as np

from .. import devices as _devices
from . import _alloc, _autotune
from . import checks as v
from . import reference
from .cpu import activations as _act
from .cpu import dropout as _dropout_kernel
from .cpu import losses as _losses
from .cpu import matmul as _matmul
from .cpu import optim as _optim
from .cpu import bias_grad as _bias_grad_kernel
from .cpu._math import ACTIVATION_IDS, ACTIVATIONS
from .philox import keep_threshold

__all__ = ["ACTIVATIONS", "matmul", "linear", "linear_backward", "gemm_shape_class",
           "impl_choices", "forget_impl_choices", "activation",
           "activation_backward", "softmax_cross_entropy", "binary_cross_entropy_with_logits",
           "mse", "dropout", "dropout_backward", "bias_grad", "sgd_step", "adagrad_step",
           "rmsprop_step", "adam_step", "check_device_errors", "cpu_info", "reference"]


def _empty(shape, dtype):
    """Every CPU output is allocated here: large ones from reused buffers (_alloc.py).
    (The tests swap in a NaN-filled allocator.)"""
    return _alloc.empty(shape, dtype)


def _empty_like(x):
    return _empty(x.shape, x.dtype)


def _on_gpu(*arrays):
    """True for CuPy arrays, False for NumPy; mixing devices in one op is an error."""
    if all(type(a) is np.ndarray or a is None for a in arrays):
        return False  # the common case, every op of a CPU training step: no set to build
    arrays = [a for a in arrays if a is not None]
    _devices.same_device(*arrays)
    return v.is_cupy(arrays[0])


def _cuda(family):
    """The CUDA launcher module for an op family, imported on first use (it imports CuPy)."""
    return importlib.import_module(f".cuda.{family}", __name__)


def check_device_errors():
    """Raise if a CUDA kernel on the current device met bad data only it could see (a
    label outside [0, classes) in softmax_cross_entropy: that row came out NaN) since the
    last check. A synchronizing read; the nn API calls it where it reads a loss back."""
    _cuda("_module").check_errors()


def cpu_info():
    """What the CPU kernels were compiled for: the target CPU and where its name came from,
    the vector width and register count, whether multiply-adds are fused, the lanes per
    vector and the GEMM's micro-tile (rows x columns of C in registers) per dtype, and the
    threads. Set NUMBA_CPU_NAME (and NUMBA_CPU_FEATURES) to compile for another target."""
    import numba
    from numba.core import config
    from .cpu import _target
    width, registers, fma = _target.vector_shape()
    info = {"target": _target.target_name(),
            "target_from": "NUMBA_CPU_NAME" if config.CPU_NAME else "host",
            "vector_bytes": width, "vector_registers": registers, "fma": fma,
            "threads": numba.get_num_threads()}
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        info[f"lanes_{name}"] = width // np.dtype(dtype).itemsize
        info[f"gemm_tile_{name}"] = "x".join(map(str, _matmul.micro_tile(dtype)))
    return info


def _activation_id(name):
    try:
        return ACTIVATION_IDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS} or None") \
            from None


def _alpha(alpha, dtype):
    return dtype.type(v.finite(alpha, "alpha (leaky_relu's negative slope)", 0.0))


# Below this many multiply-adds (about 0.1 ms) auto does not measure and runs ours: BLAS
# may win such a call by microseconds, but waking OpenBLAS's thread pool between Numba
# kernels costs far more (the demo MLP step: 0.39 ms all Numba, 1.85 ms with its three
# 10-wide GEMMs sent to OpenBLAS, although each measured faster there).
AUTO_MIN_MACS = 1 << 24

_scratch_buffers = {}


def _scratch(size, dtype):
    """A reused buffer for the GEMM's packed operands. A fresh multi-megabyte array per
    call would page-fault on first touch every time (it is mmap'd and unmapped by malloc);
    reuse is safe because the kernels hold the GIL, so calls never overlap."""
    buf = _scratch_buffers.get(dtype)
    if buf is None or buf.size < size:
        buf = _scratch_buffers[dtype] = np.empty(size, dtype)
    return buf


def _gemm_operands(a, b, trans_a, trans_b):
    a = v.float_array(a, "a", 2, 2)
    b = v.float_array(b, "b", 2, 2)
    v.same_dtype(a, "a", b, "b")
    a_shape = a.shape[::-1] if trans_a else a.shape
    b_shape = b.shape[::-1] if trans_b else b.shape
    if a_shape[1] != b_shape[0]:
        raise ValueError(f"matmul shapes do not align: op(a) is {a_shape} and op(b) is "
                         f"{b_shape} (a {a.shape}, trans_a={trans_a}; b {b.shape}, "
                         f"trans_b={trans_b})")
    return a, b


def _gemm(a, b, trans_a, trans_b, impl, bias=None, act=0, alpha=None):
    """act(op(a) @ op(b) + bias) by `impl` (already checked); operands validated."""
    M = a.shape[1] if trans_a else a.shape[0]
    K = a.shape[0] if trans_a else a.shape[1]
    N = b.shape[0] if trans_b else b.shape[1]
    alpha = a.dtype.type(0) if alpha is None else alpha
    has_epilogue = bias is not None or act != 0
    key = gemm_shape_class("linear" if has_epilogue else "matmul", a.dtype, M, N, K, trans_a,
                           trans_b)
    if v.is_cupy(a):
        return _cuda("matmul").gemm(a, b, bool(trans_a), bool(trans_b), impl, key, bias, act,
                                    alpha)

    if bias is None:
        bias = np.zeros(N if act else 1, a.dtype)  # the epilogue adds a bias: zero if none

    def numba():
        c = _empty((M, N), a.dtype)
        work = M * N * K // 64
        parts = _matmul.partition(M, N, a.dtype, _matmul.gemm.threads(work))
        scratch = _scratch(_matmul.scratch_size(M, N, K, a.dtype, parts[0] * parts[1]),
                           a.dtype)
        _matmul.gemm(work, a, b, c, bias, has_epilogue, act, alpha, bool(trans_a),
                     bool(trans_b), *parts, scratch)
        return c

    def blas():
        c = _empty((M, N), a.dtype)
        np.matmul(a.T if trans_a else a, b.T if trans_b else b, out=c)
        if has_epilogue:
            _act.bias_activation(c.size, c, bias, act, alpha)
        return c

    if impl == "auto" and M * N * K < AUTO_MIN_MACS:
        impl = "numba"
    return _autotune.run(key, impl, {"numba": numba, "blas": blas})


def gemm_shape_class(op, dtype, M, N, K, trans_a=False, trans_b=False):
    """The key under which impl="auto" records its choice for this GEMM ("matmul", or
    "linear" for one with an epilogue); see impl_choices()."""
    return _autotune.shape_class(op, dtype, M, N, K, flags=(f"t{int(trans_a)}{int(trans_b)}",))


impl_choices = _autotune.choices
forget_impl_choices = _autotune.forget


def matmul(a, b, trans_a=False, trans_b=False, impl="auto"):
    """C = op(a) @ op(b), op transposing when trans_* is set; 2-D, any M, N, K.

    impl on the CPU: "numba" (our packed GEMM), "blas" (OpenBLAS through NumPy) or "auto"
    (the faster one for this shape class, measured once and cached; $KERNELGRAD_IMPL
    overrides auto). On the GPU: "cuda-tiled", "cuda-regblock", "cuda-tf32", "cuda-bf16"
    (tensor cores; inputs rounded to TF32 / bf16), "cublas" or "auto" (the fastest float32
    one, measured once per shape class and process). Transposed operands are read in place.
    """
    impl = _autotune.check_impl(impl, "cuda" if _on_gpu(a, b) else "cpu")
    a, b = _gemm_operands(a, b, trans_a, trans_b)
    return _gemm(a, b, trans_a, trans_b, impl)


def linear(x, w, b=None, activation=None, alpha=0.01, return_preact=False, impl="auto"):
    """y = act(x @ w + b); with impl "numba" in one kernel (bias and activation applied to
    each finished tile of the GEMM), with "blas" as an OpenBLAS GEMM and one fused pass.

    x (batch, in), w (in, out), b (out,) or None. With return_preact, returns (y, z)
    where z = x @ w + b; gelu's backward needs z. impl as for matmul.
    """
    impl = _autotune.check_impl(impl, "cuda" if _on_gpu(x, w, b) else "cpu")
    x = v.float_array(x, "x", 2, 2)
    w = v.float_array(w, "w", 2, 2)
    v.same_dtype(x, "x", w, "w")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"linear: x has shape {x.shape} but w has shape {w.shape}; w must "
                         f"be (in_features={x.shape[1]}, out_features)")
    if b is not None:
        b = v.float_array(b, "b", 1, 1)
        v.same_dtype(x, "x", b, "b")
        if b.shape != (w.shape[1],):
            raise ValueError(f"linear: b has shape {b.shape} but w has shape {w.shape}; "
                             f"b must be ({w.shape[1]},)")
    act = _activation_id(activation)
    alpha = _alpha(alpha, x.dtype)
    if not return_preact:
        return _gemm(x, w, False, False, impl, b, act, alpha)
    z = _gemm(x, w, False, False, impl, b, 0, alpha)
    return _activation_forward(z, act, alpha), z


def linear_backward(dy, x, w, y, activation=None, alpha=0.01, preact=None,
                    need_input_grad=True, impl="auto"):
    """(dx, dw, db) for y = act(x @ w + b); dx is None unless need_input_grad.

    `y` is the layer's output; gelu needs `preact` (z) instead. dx = dz @ w.T and
    dw = x.T @ dz are GEMMs on the transposed operands in place; impl as for matmul.
    """
    impl = _autotune.check_impl(impl, "cuda" if _on_gpu(dy, x, w, y, preact) else "cpu")
    x = v.float_array(x, "x", 2, 2)
    w = v.float_array(w, "w", 2, 2)
    dy = v.float_array(dy, "dy", 2, 2)
    v.same_dtype(x, "x", w, "w")
    v.same_dtype(x, "x", dy, "dy")
    expected = (x.shape[0], w.shape[1])
    if x.shape[1] != w.shape[0] or dy.shape != expected:
        raise ValueError(f"linear_backward: x {x.shape}, w {w.shape} and dy {dy.shape} do "
                         f"not fit (dy must be {expected})")
    act = _activation_id(activation)
    alpha = _alpha(alpha, x.dtype)
    dz = dy
    if act:
        saved_name = "preact" if activation == "gelu" else "y"
        saved = preact if activation == "gelu" else y
        if saved is None:
            raise ValueError(f"linear_backward with {activation} needs {saved_name}")
        saved = v.float_array(saved, saved_name, 2, 2)
        v.same_shape(saved, saved_name, dy, "dy")
        v.same_dtype(saved, saved_name, dy, "dy")
        dz = _activation_backward(dy, saved, act, alpha)
    dx = _gemm(dz, w, False, True, impl) if need_input_grad else None
    dw = _gemm(x, dz, True, False, impl)
    return dx, dw, _bias_grad(dz)


def _activation_forward(x, act, alpha):
    if v.is_cupy(x):
        if act == 0:
            return x.copy()
        return _cuda("activations").forward(x, act, alpha)
    out = _empty_like(x)
    _act.activation_forward[act](x.size, x.reshape(-1), out.reshape(-1), alpha)
    return out


def _activation_backward(dy, saved, act, alpha):
    if v.is_cupy(dy):
        if act == 0:
            return dy.copy()
        return _cuda("activations").backward(dy, saved, act, alpha)
    dx = _empty_like(dy)
    _act.activation_backward[act](dy.size, dy.reshape(-1), saved.reshape(-1), dx.reshape(-1),
                                  alpha)
    return dx


def activation(x, name, alpha=0.01):
    """name(x) elementwise for name in ACTIVATIONS (gelu is the tanh form)."""
    x = v.float_array(x, "x")
    return _activation_forward(x, _activation_id(name), _alpha(alpha, x.dtype))


def activation_backward(dy, saved, name, alpha=0.01):
    """dL/dx from dL/dy; `saved` is the forward output y (the input x for gelu)."""
    dy = v.float_array(dy, "dy")
    saved = v.float_array(saved, "saved")
    v.same_shape(dy, "dy", saved, "saved")
    v.same_dtype(dy, "dy", saved, "saved")
    _on_gpu(dy, saved)
    return _activation_backward(dy, saved, _activation_id(name), _alpha(alpha, dy.dtype))


def softmax_cross_entropy(logits, labels):
    """(losses, dlogits) from logits (N, C) and integer labels (N,) in [0, C).

    losses[i] = -log softmax(logits[i])[labels[i]]; dlogits = softmax(logits) - onehot,
    the gradient of losses.sum(). Stable for any finite logits.
    """
    logits = v.float_array(logits, "logits", 2, 2)
    gpu = _on_gpu(logits, labels)
    labels = v.labels_for(labels, *logits.shape)
    if gpu:
        return _cuda("losses").softmax_cross_entropy(logits, labels)
    losses = _empty(logits.shape[0], dtype=logits.dtype)
    dlogits = _empty_like(logits)
    _losses.softmax_cross_entropy(logits.size, logits, labels, losses, dlogits)
    return losses, dlogits


def _elementwise_loss(kernel, pred, target, pred_name, target_name):
    """kernel: the name of the loss kernel, the same in cpu/losses.py and cuda/losses.py."""
    pred = v.float_array(pred, pred_name)
    target = v.float_array(target, target_name)
    v.same_shape(pred, pred_name, target, target_name)
    v.same_dtype(pred, pred_name, target, target_name)
    if _on_gpu(pred, target):
        return getattr(_cuda("losses"), kernel)(pred, target)
    losses = _empty_like(pred)
    grad = _empty_like(pred)
    getattr(_losses, kernel)(pred.size, pred.reshape(-1), target.reshape(-1),
                             losses.reshape(-1), grad.reshape(-1))
    return losses, grad


def binary_cross_entropy_with_logits(logits, targets):
    """(losses, dlogits) elementwise: -[t log s(z) + (1-t) log(1-s(z))], dlogits = s(z) - t."""
    return _elementwise_loss("binary_cross_entropy_with_logits", logits, targets,
                             "logits", "targets")


def mse(pred, target):
    """(losses, dpred) elementwise: (pred - target)^2 and 2 (pred - target)."""
    return _elementwise_loss("mse", pred, target, "pred", "target")


def _dropout(x, p, seed, offset, name):
    x = v.float_array(x, name)
    p = v.probability(p)
    seed = np.uint64(v.uint64(seed, "seed"))
    offset = np.uint64(v.uint64(offset, "offset"))
    if v.is_cupy(x):
        return _cuda("dropout").dropout(x, keep_threshold(p), 1.0 / (1.0 - p), seed, offset)
    out = _empty_like(x)
    _dropout_kernel.dropout(x.size, x.reshape(-1), out.reshape(-1), keep_threshold(p),
                     x.dtype.type(1.0 / (1.0 - p)), seed, offset)
    return out


def dropout(x, p, seed, offset=0):
    """Inverted dropout: x / (1 - p) where kept, 0 where dropped (probability p).

    The mask comes from Philox4x32-10 keyed by (seed, offset) and is never stored:
    dropout_backward with the same arguments regenerates it.
    """
    return _dropout(x, p, seed, offset, "x")


def dropout_backward(dy, p, seed, offset=0):
    """dL/dx of dropout(x, p, seed, offset): the same mask and scale applied to dy."""
    return _dropout(dy, p, seed, offset, "dy")


def _bias_grad(dy):
    if v.is_cupy(dy):
        return _cuda("bias_grad").bias_grad(dy)
    out = _empty(dy.shape[1], dtype=dy.dtype)
    bands = min(_bias_grad_kernel.bias_grad.threads(dy.size), dy.shape[0])  # one per thread
    _bias_grad_kernel.bias_grad(dy.size, dy, out, bands)
    return out


def bias_grad(dy):
    """Column sums of dy (N, C): the gradient of a bias added to every row."""
    return _bias_grad(v.float_array(dy, "dy", 2, 2))


# ---- optimizer steps: in place on param and its state, as torch.optim defines them ----
# Each takes one parameter, or lists with one entry per parameter (PyTorch's foreach form)
# updated with the same hyper-parameters: on the GPU, one launch per 8 parameters.

def _param_and_grad(param, grad, at=""):
    """The validated param (updated in place) and its gradient, both in param's shape."""
    v.in_place_array(param, f"param{at}")
    if param.dtype not in v.FLOAT_DTYPES:
        raise TypeError(f"param{at} must be float32 or float64, got {param.dtype}")
    if param.size == 0:
        raise ValueError(f"param{at} is empty")
    grad = v.float_array(grad, f"grad{at}")
    v.same_shape(grad, f"grad{at}", param, f"param{at}")
    v.same_dtype(grad, f"grad{at}", param, f"param{at}")
    return param, grad


def _tensors(param, grad, **state):
    """[(param, grad, *state)] per parameter, validated and flat (all are contiguous, so
    these are views). `param` is an array or a list of them; `grad` and each state (None:
    not used) take the same form. A state array matches its param in shape and dtype."""
    if isinstance(param, (list, tuple)):
        count = len(param)
        if count == 0:
            raise ValueError("param is an empty list")
        for name, value in (("grad", grad), *state.items()):
            if value is None:
                continue
            if not isinstance(value, (list, tuple)):
                raise TypeError(f"param is a list (one array per parameter), so {name} must "
                                f"be a list too, got {type(value).__name__}")
            if len(value) != count:
                raise ValueError(f"param is a list of {count} arrays but {name} is a list "
                                 f"of {len(value)}")
        rows = [(param[i], grad[i], *(s if s is None else s[i] for s in state.values()),
                 f"[{i}]") for i in range(count)]
    else:
        rows = [(param, grad, *state.values(), "")]
    tensors = []
    for p, g, *states, at in rows:
        p, g = _param_and_grad(p, g, at)
        states = [s if s is None else v.state_array(s, f"{name}{at}", p, f"param{at}")
                  for s, name in zip(states, state)]
        tensors.append(tuple(a if a is None else a.reshape(-1) for a in (p, g, *states)))
    return tensors


def _on_gpu_all(tensors):
    """Whether a step's tensors are CuPy arrays; all of them must be on one device."""
    return _on_gpu(*(a for t in tensors for a in t))


def _needed(state, what, flag, why):
    """`state` where `flag` says the step uses it (then it must be given), else None."""
    if flag and state is None:
        raise ValueError(f"{why} needs {what} shaped like param")
    return state if flag else None


def sgd_step(param, grad, momentum_buf=None, *, lr, momentum=0.0, dampening=0.0,
             weight_decay=0.0, nesterov=False, step=1):
    """SGD with optional momentum (buffer initialized to the gradient at step 1), dampening,
    Nesterov momentum and L2 weight decay. momentum_buf is needed when momentum != 0."""
    lr = v.finite(lr, "lr", 0.0)
    momentum = v.finite(momentum, "momentum", 0.0)
    dampening = v.finite(dampening, "dampening", 0.0, 1.0)
    weight_decay = v.finite(weight_decay, "weight_decay", 0.0)
    step = v.step_count(step)
    if nesterov and (momentum == 0 or dampening != 0):
        raise ValueError("nesterov momentum needs momentum > 0 and dampening = 0")
    tensors = _tensors(param, grad, momentum_buf=_needed(
        momentum_buf, "a momentum_buf", momentum != 0, "momentum != 0"))
    if _on_gpu_all(tensors):
        return _cuda("optim").sgd_step(tensors, lr, momentum, 1 - dampening, weight_decay,
                                       momentum != 0, nesterov, step == 1)
    kernel = _optim.sgd_step[momentum != 0, bool(nesterov), step == 1]
    for p, g, buf in tensors:
        T = p.dtype.type
        kernel(p.size, p, g, p if buf is None else buf, T(lr), T(momentum), T(1 - dampening),
               T(weight_decay))


def adagrad_step(param, grad, state_sum, *, lr=0.01, lr_decay=0.0, weight_decay=0.0,
                 eps=1e-10, step=1):
    """Adagrad: state_sum += g^2; param -= lr / (1 + (step-1) lr_decay) g / (sqrt(sum) + eps)."""
    lr = v.finite(lr, "lr", 0.0)
    lr_decay = v.finite(lr_decay, "lr_decay", 0.0)
    weight_decay = v.finite(weight_decay, "weight_decay", 0.0)
    eps = v.finite(eps, "eps", 0.0)
    step = v.step_count(step)
    tensors = _tensors(param, grad, state_sum=_needed(state_sum, "state_sum", True, "Adagrad"))
    clr = lr / (1 + (step - 1) * lr_decay)
    if _on_gpu_all(tensors):
        return _cuda("optim").adagrad_step(tensors, clr, weight_decay, eps)
    for p, g, state in tensors:
        T = p.dtype.type
        _optim.adagrad_step(p.size, p, g, state, T(clr), T(weight_decay), T(eps))


def rmsprop_step(param, grad, square_avg, *, grad_avg=None, momentum_buf=None, lr=0.01,
                 alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    """RMSprop with optional momentum (needs momentum_buf) and centering (needs grad_avg)."""
    lr = v.finite(lr, "lr", 0.0)
    alpha = v.finite(alpha, "alpha", 0.0, 1.0)
    eps = v.finite(eps, "eps", 0.0)
    weight_decay = v.finite(weight_decay, "weight_decay", 0.0)
    momentum = v.finite(momentum, "momentum", 0.0)
    tensors = _tensors(
        param, grad, square_avg=_needed(square_avg, "square_avg", True, "RMSprop"),
        grad_avg=_needed(grad_avg, "a grad_avg", centered, "centered RMSprop"),
        momentum_buf=_needed(momentum_buf, "a momentum_buf", momentum != 0, "momentum != 0"))
    if _on_gpu_all(tensors):
        return _cuda("optim").rmsprop_step(tensors, lr, alpha, eps, weight_decay, momentum,
                                           momentum != 0, centered)
    kernel = _optim.rmsprop_step[momentum != 0, bool(centered)]
    for p, g, square, average, buf in tensors:
        T = p.dtype.type
        kernel(p.size, p, g, square, p if average is None else average,
               p if buf is None else buf, T(lr), T(alpha), T(1 - alpha), T(eps),
               T(weight_decay), T(momentum))


def adam_step(param, grad, exp_avg, exp_avg_sq, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, step=1, decoupled_weight_decay=False):
    """Adam (weight decay added to the gradient) or, with decoupled_weight_decay, AdamW
    (param *= 1 - lr * weight_decay first). `step` is this update's count, from 1."""
    lr = v.finite(lr, "lr", 0.0)
    beta1 = v.finite(beta1, "beta1", 0.0, 1.0, high_open=True)
    beta2 = v.finite(beta2, "beta2", 0.0, 1.0, high_open=True)
    eps = v.finite(eps, "eps", 0.0)
    weight_decay = v.finite(weight_decay, "weight_decay", 0.0)
    step = v.step_count(step)
    tensors = _tensors(param, grad, exp_avg=_needed(exp_avg, "exp_avg", True, "Adam"),
                       exp_avg_sq=_needed(exp_avg_sq, "exp_avg_sq", True, "Adam"))
    bias1 = 1 - beta1 ** step
    bias2 = 1 - beta2 ** step
    coupled = 0.0 if decoupled_weight_decay else weight_decay
    decay = 1 - lr * weight_decay if decoupled_weight_decay else 1.0
    if _on_gpu_all(tensors):
        return _cuda("optim").adam_step(tensors, lr / bias1, beta1, beta2, eps, coupled, decay,
                                        1 / bias2 ** 0.5)
    for p, g, m, sq in tensors:
        T = p.dtype.type
        _optim.adam_step(p.size, p, g, m, sq, T(lr / bias1), T(beta1), T(1 - beta1), T(beta2),
                         T(1 - beta2), T(eps), T(coupled), T(decay), T(1 / bias2 ** 0.5))
