"""The optimizer steps: in place on param and its state, as torch.optim defines them, on
cpu/optim.py and cuda/optim.cu.

Each takes one parameter, or lists with one entry per parameter (PyTorch's foreach form)
updated with the same hyper-parameters: on the GPU, one launch per 8 parameters.
"""
from .. import checks
from ..cpu import optim as cpu_kernels
from ._common import cuda, on_gpu


def _param_and_grad(param, grad, at=""):
    """The validated param (updated in place) and its gradient, both in param's shape."""
    checks.in_place_array(param, f"param{at}")
    if param.dtype not in checks.FLOAT_DTYPES:
        raise TypeError(f"param{at} must be float32 or float64, got {param.dtype}")
    if param.size == 0:
        raise ValueError(f"param{at} is empty")
    grad = checks.float_array(grad, f"grad{at}")
    checks.same_shape(grad, f"grad{at}", param, f"param{at}")
    checks.same_dtype(grad, f"grad{at}", param, f"param{at}")
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
        states = [s if s is None else checks.state_array(s, f"{name}{at}", p, f"param{at}")
                  for s, name in zip(states, state)]
        tensors.append(tuple(a if a is None else a.reshape(-1) for a in (p, g, *states)))
    return tensors


def _on_gpu_all(tensors):
    """Whether a step's tensors are CuPy arrays; all of them must be on one device."""
    return on_gpu(*(a for t in tensors for a in t))


def _needed(state, what, flag, why):
    """`state` where `flag` says the step uses it (then it must be given), else None."""
    if flag and state is None:
        raise ValueError(f"{why} needs {what} shaped like param")
    return state if flag else None


def sgd_step(param, grad, momentum_buf=None, *, lr, momentum=0.0, dampening=0.0,
             weight_decay=0.0, nesterov=False, step=1):
    """SGD with optional momentum (buffer initialized to the gradient at step 1), dampening,
    Nesterov momentum and L2 weight decay. momentum_buf is needed when momentum != 0."""
    lr = checks.finite(lr, "lr", 0.0)
    momentum = checks.finite(momentum, "momentum", 0.0)
    dampening = checks.finite(dampening, "dampening", 0.0, 1.0)
    weight_decay = checks.finite(weight_decay, "weight_decay", 0.0)
    step = checks.step_count(step)
    if nesterov and (momentum == 0 or dampening != 0):
        raise ValueError("nesterov momentum needs momentum > 0 and dampening = 0")
    tensors = _tensors(param, grad, momentum_buf=_needed(
        momentum_buf, "a momentum_buf", momentum != 0, "momentum != 0"))
    if _on_gpu_all(tensors):
        return cuda("optim").sgd_step(tensors, lr, momentum, 1 - dampening, weight_decay,
                                       momentum != 0, nesterov, step == 1)
    kernel = cpu_kernels.sgd_step[momentum != 0, bool(nesterov), step == 1]
    for p, g, buf in tensors:
        T = p.dtype.type
        kernel(p.size, p, g, p if buf is None else buf, T(lr), T(momentum), T(1 - dampening),
               T(weight_decay))


def adagrad_step(param, grad, state_sum, *, lr=0.01, lr_decay=0.0, weight_decay=0.0,
                 eps=1e-10, step=1):
    """Adagrad: state_sum += g^2; param -= lr / (1 + (step-1) lr_decay) g / (sqrt(sum) + eps)."""
    lr = checks.finite(lr, "lr", 0.0)
    lr_decay = checks.finite(lr_decay, "lr_decay", 0.0)
    weight_decay = checks.finite(weight_decay, "weight_decay", 0.0)
    eps = checks.finite(eps, "eps", 0.0)
    step = checks.step_count(step)
    tensors = _tensors(param, grad, state_sum=_needed(state_sum, "state_sum", True, "Adagrad"))
    clr = lr / (1 + (step - 1) * lr_decay)
    if _on_gpu_all(tensors):
        return cuda("optim").adagrad_step(tensors, clr, weight_decay, eps)
    for p, g, state in tensors:
        T = p.dtype.type
        cpu_kernels.adagrad_step(p.size, p, g, state, T(clr), T(weight_decay), T(eps))


def rmsprop_step(param, grad, square_avg, *, grad_avg=None, momentum_buf=None, lr=0.01,
                 alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    """RMSprop with optional momentum (needs momentum_buf) and centering (needs grad_avg)."""
    lr = checks.finite(lr, "lr", 0.0)
    alpha = checks.finite(alpha, "alpha", 0.0, 1.0)
    eps = checks.finite(eps, "eps", 0.0)
    weight_decay = checks.finite(weight_decay, "weight_decay", 0.0)
    momentum = checks.finite(momentum, "momentum", 0.0)
    tensors = _tensors(
        param, grad, square_avg=_needed(square_avg, "square_avg", True, "RMSprop"),
        grad_avg=_needed(grad_avg, "a grad_avg", centered, "centered RMSprop"),
        momentum_buf=_needed(momentum_buf, "a momentum_buf", momentum != 0, "momentum != 0"))
    if _on_gpu_all(tensors):
        return cuda("optim").rmsprop_step(tensors, lr, alpha, eps, weight_decay, momentum,
                                           momentum != 0, centered)
    kernel = cpu_kernels.rmsprop_step[momentum != 0, bool(centered)]
    for p, g, square, average, buf in tensors:
        T = p.dtype.type
        kernel(p.size, p, g, square, p if average is None else average,
               p if buf is None else buf, T(lr), T(alpha), T(1 - alpha), T(eps),
               T(weight_decay), T(momentum))


def adam_step(param, grad, exp_avg, exp_avg_sq, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, step=1, decoupled_weight_decay=False):
    """Adam (weight decay added to the gradient) or, with decoupled_weight_decay, AdamW
    (param *= 1 - lr * weight_decay first). `step` is this update's count, from 1."""
    lr = checks.finite(lr, "lr", 0.0)
    beta1 = checks.finite(beta1, "beta1", 0.0, 1.0, high_open=True)
    beta2 = checks.finite(beta2, "beta2", 0.0, 1.0, high_open=True)
    eps = checks.finite(eps, "eps", 0.0)
    weight_decay = checks.finite(weight_decay, "weight_decay", 0.0)
    step = checks.step_count(step)
    tensors = _tensors(param, grad, exp_avg=_needed(exp_avg, "exp_avg", True, "Adam"),
                       exp_avg_sq=_needed(exp_avg_sq, "exp_avg_sq", True, "Adam"))
    bias1 = 1 - beta1 ** step
    bias2 = 1 - beta2 ** step
    coupled = 0.0 if decoupled_weight_decay else weight_decay
    decay = 1 - lr * weight_decay if decoupled_weight_decay else 1.0
    if _on_gpu_all(tensors):
        return cuda("optim").adam_step(tensors, lr / bias1, beta1, beta2, eps, coupled, decay,
                                        1 / bias2 ** 0.5)
    for p, g, m, sq in tensors:
        T = p.dtype.type
        cpu_kernels.adam_step(p.size, p, g, m, sq, T(lr / bias1), T(beta1), T(1 - beta1), T(beta2),
                         T(1 - beta2), T(eps), T(coupled), T(decay), T(1 / bias2 ** 0.5))
