"""The optimizer steps: in place on param and its state, as torch.optim defines them, on
cpu/optim.py and cuda/optim.cu.

Each takes one parameter, or lists with one entry per parameter (PyTorch's foreach form)
updated with the same hyper-parameters: on the GPU, one launch per 8 parameters.

A step is checked whole before any array changes: every array (shapes, dtypes, devices,
no shared memory between what it writes and anything else it touches) and every
hyper-parameter in the dtype it will be used in. prepare_*() returns the checked step,
ready to run(); the optimizers of kernelgrad.optim prepare every group's steps before they
run any, so a bad gradient on the last parameter leaves the first one untouched too.
"""
from .. import checks
from ..cpu import optim as cpu_kernels
from ._common import cuda, on_gpu


class Step:
    """A checked optimizer step: run() updates the arrays in place."""

    def __init__(self, tensors, gpu, run_gpu, run_cpu):
        self.tensors, self.gpu = tensors, gpu
        self._run_gpu, self._run_cpu = run_gpu, run_cpu

    def run(self):
        if self.gpu:
            self._run_gpu(self.tensors)
        else:
            for row in self.tensors:
                self._run_cpu(*row)


def _param_and_grad(param, grad, at=""):
    """The checked param (updated in place) and its gradient, both in param's shape."""
    checks.in_place_array(param, f"param{at}")
    grad = checks.float_array(grad, f"grad{at}")
    checks.same_shape(grad, f"grad{at}", param, f"param{at}")
    checks.same_dtype(grad, f"grad{at}", param, f"param{at}")
    return param, grad


def _rows(param, grad, state):
    """[(param, grad, *state, suffix)] for one parameter or for lists of them."""
    if not isinstance(param, (list, tuple)):
        for name, value in (("grad", grad), *state.items()):
            if isinstance(value, (list, tuple)):
                raise TypeError(f"param is one array, so {name} must be one too, got a "
                                f"{type(value).__name__}")
        return [(param, grad, *state.values(), "")]
    count = len(param)
    if count == 0:
        raise ValueError("param is an empty list")
    for name, value in (("grad", grad), *state.items()):
        if value is None and name != "grad":
            continue
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"param is a list (one array per parameter), so {name} must be "
                            f"a list too, got {type(value).__name__}")
        if len(value) != count:
            raise ValueError(f"param is a list of {count} arrays but {name} is a list of "
                             f"{len(value)}")
    return [(param[i], grad[i], *(s if s is None else s[i] for s in state.values()), f"[{i}]")
            for i in range(count)]


def _tensors(param, grad, **state):
    """[(param, grad, *state)] per parameter, checked and flat (all are contiguous, so
    these are views). `param` is an array or a list of them; `grad` and each state (None:
    not used) take the same form. A state array matches its param in shape and dtype, and
    no array the step writes shares memory with another array of the step."""
    tensors, written, read = [], [], []
    for p, g, *states, at in _rows(param, grad, state):
        p, g = _param_and_grad(p, g, at)
        checked = [s if s is None else checks.state_array(s, f"{name}{at}", p, f"param{at}")
                   for s, name in zip(states, state)]
        written.append((f"param{at}", p))
        written += [(f"{name}{at}", s) for s, name in zip(checked, state) if s is not None]
        read.append((f"grad{at}", g))
        tensors.append(tuple(a if a is None else a.reshape(-1) for a in (p, g, *checked)))
    checks.no_overlap(written, read)
    on_gpu(*(a for row in tensors for a in row))  # one device for all of them
    return tensors


def _needed(state, what, flag, why):
    """`state` where `flag` says the step uses it (then it must be given), else None."""
    if flag and state is None:
        raise ValueError(f"{why} needs {what} shaped like param")
    if flag and isinstance(state, (list, tuple)) and any(s is None for s in state):
        index = next(i for i, s in enumerate(state) if s is None)
        raise TypeError(f"{what.split()[-1]}[{index}] is None: {why} needs every entry")
    return state if flag else None


def _scalars(dtype, **values):
    """The hyper-parameters in dtype, each checked to stay finite (and nonzero when it is
    nonzero) there."""
    return [dtype.type(checks.representable(v, name, dtype)) for name, v in values.items()]


def prepare_sgd(param, grad, momentum_buf=None, *, lr, momentum=0.0, dampening=0.0,
                weight_decay=0.0, nesterov=False, step=1):
    lr = checks.finite(lr, "lr", 0.0)
    momentum = checks.finite(momentum, "momentum", 0.0)
    dampening = checks.finite(dampening, "dampening", 0.0, 1.0)
    weight_decay = checks.finite(weight_decay, "weight_decay", 0.0)
    step = checks.step_count(step)
    if nesterov and (momentum == 0 or dampening != 0):
        raise ValueError("nesterov momentum needs momentum > 0 and dampening = 0")
    use_momentum, nesterov = momentum != 0, bool(nesterov)
    tensors = _tensors(param, grad, momentum_buf=_needed(
        momentum_buf, "a momentum_buf", use_momentum, "momentum != 0"))
    kernels = {dtype: sgd_kernel(dtype, lr, momentum, dampening, weight_decay, nesterov, step)
               for dtype in {row[0].dtype for row in tensors}}
    return Step(
        tensors, on_gpu(tensors[0][0]),
        lambda t: cuda("optim").sgd_step(t, lr, momentum, 1 - dampening, weight_decay,
                                          use_momentum, nesterov, step == 1),
        lambda p, g, buf: kernels[p.dtype][0](p.size, p, g, p if buf is None else buf,
                                              *kernels[p.dtype][1]))


def sgd_kernel(dtype, lr, momentum, dampening, weight_decay, nesterov, step):
    """(CPU kernel, its scalar arguments in dtype) of an SGD step; the arrays are
    (param, grad, momentum_buf or param)."""
    return (cpu_kernels.sgd_step[momentum != 0, bool(nesterov), step == 1],
            _scalars(dtype, lr=lr, momentum=momentum, dampening=1 - dampening,
                     weight_decay=weight_decay))


def sgd_step(param, grad, momentum_buf=None, *, lr, momentum=0.0, dampening=0.0,
             weight_decay=0.0, nesterov=False, step=1):
    """SGD with optional momentum (buffer initialized to the gradient at step 1), dampening,
    Nesterov momentum and L2 weight decay. momentum_buf is needed when momentum != 0."""
    prepare_sgd(param, grad, momentum_buf, lr=lr, momentum=momentum, dampening=dampening,
                weight_decay=weight_decay, nesterov=nesterov, step=step).run()


def prepare_adagrad(param, grad, state_sum, *, lr=0.01, lr_decay=0.0, weight_decay=0.0,
                    eps=1e-10, step=1):
    lr = checks.finite(lr, "lr", 0.0)
    lr_decay = checks.finite(lr_decay, "lr_decay", 0.0)
    weight_decay = checks.finite(weight_decay, "weight_decay", 0.0)
    eps = checks.finite(eps, "eps", 0.0)
    step = checks.step_count(step)
    tensors = _tensors(param, grad, state_sum=_needed(state_sum, "state_sum", True, "Adagrad"))
    clr = lr / (1 + (step - 1) * lr_decay)
    kernels = {dtype: adagrad_kernel(dtype, lr, lr_decay, weight_decay, eps, step)
               for dtype in {row[0].dtype for row in tensors}}
    return Step(tensors, on_gpu(tensors[0][0]),
                lambda t: cuda("optim").adagrad_step(t, clr, weight_decay, eps),
                lambda p, g, state: kernels[p.dtype][0](p.size, p, g, state,
                                                        *kernels[p.dtype][1]))


def adagrad_kernel(dtype, lr, lr_decay, weight_decay, eps, step):
    """(CPU kernel, scalars) of an Adagrad step; arrays (param, grad, state_sum)."""
    clr = lr / (1 + (step - 1) * lr_decay)
    return cpu_kernels.adagrad_step, _scalars(dtype, lr=clr, weight_decay=weight_decay,
                                              eps=eps)


def adagrad_step(param, grad, state_sum, *, lr=0.01, lr_decay=0.0, weight_decay=0.0,
                 eps=1e-10, step=1):
    """Adagrad: state_sum += g^2; param -= lr / (1 + (step-1) lr_decay) g / (sqrt(sum) + eps)."""
    prepare_adagrad(param, grad, state_sum, lr=lr, lr_decay=lr_decay,
                    weight_decay=weight_decay, eps=eps, step=step).run()


def prepare_rmsprop(param, grad, square_avg, *, grad_avg=None, momentum_buf=None, lr=0.01,
                    alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    lr = checks.finite(lr, "lr", 0.0)
    alpha = checks.finite(alpha, "alpha", 0.0, 1.0)
    eps = checks.finite(eps, "eps", 0.0)
    weight_decay = checks.finite(weight_decay, "weight_decay", 0.0)
    momentum = checks.finite(momentum, "momentum", 0.0)
    use_momentum, centered = momentum != 0, bool(centered)
    tensors = _tensors(
        param, grad, square_avg=_needed(square_avg, "square_avg", True, "RMSprop"),
        grad_avg=_needed(grad_avg, "a grad_avg", centered, "centered RMSprop"),
        momentum_buf=_needed(momentum_buf, "a momentum_buf", use_momentum, "momentum != 0"))
    kernels = {dtype: rmsprop_kernel(dtype, lr, alpha, eps, weight_decay, momentum, centered)
               for dtype in {row[0].dtype for row in tensors}}
    return Step(
        tensors, on_gpu(tensors[0][0]),
        lambda t: cuda("optim").rmsprop_step(t, lr, alpha, eps, weight_decay, momentum,
                                              use_momentum, centered),
        lambda p, g, square, average, buf: kernels[p.dtype][0](
            p.size, p, g, square, p if average is None else average, p if buf is None else buf,
            *kernels[p.dtype][1]))


def rmsprop_kernel(dtype, lr, alpha, eps, weight_decay, momentum, centered):
    """(CPU kernel, scalars) of an RMSprop step; arrays (param, grad, square_avg,
    grad_avg or param, momentum_buf or param)."""
    return (cpu_kernels.rmsprop_step[momentum != 0, bool(centered)],
            _scalars(dtype, lr=lr, alpha=alpha, one_minus_alpha=1 - alpha, eps=eps,
                     weight_decay=weight_decay, momentum=momentum))


def rmsprop_step(param, grad, square_avg, *, grad_avg=None, momentum_buf=None, lr=0.01,
                 alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    """RMSprop with optional momentum (needs momentum_buf) and centering (needs grad_avg)."""
    prepare_rmsprop(param, grad, square_avg, grad_avg=grad_avg, momentum_buf=momentum_buf,
                    lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                    centered=centered).run()


def prepare_adam(param, grad, exp_avg, exp_avg_sq, *, lr=1e-3, beta1=0.9, beta2=0.999,
                 eps=1e-8, weight_decay=0.0, step=1, decoupled_weight_decay=False):
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
    kernels = {dtype: adam_kernel(dtype, lr, beta1, beta2, eps, weight_decay, step,
                                  decoupled_weight_decay)
               for dtype in {row[0].dtype for row in tensors}}
    return Step(
        tensors, on_gpu(tensors[0][0]),
        lambda t: cuda("optim").adam_step(t, lr / bias1, beta1, beta2, eps, coupled, decay,
                                           1 / bias2 ** 0.5),
        lambda p, g, m, sq: kernels[p.dtype][0](p.size, p, g, m, sq, *kernels[p.dtype][1]))


def adam_kernel(dtype, lr, beta1, beta2, eps, weight_decay, step, decoupled_weight_decay):
    """(CPU kernel, scalars) of an Adam (AdamW) step; arrays (param, grad, exp_avg,
    exp_avg_sq). The bias corrections are taken in double, then rounded, as PyTorch does."""
    bias1 = 1 - beta1 ** step
    bias2 = 1 - beta2 ** step
    coupled = 0.0 if decoupled_weight_decay else weight_decay
    decay = 1 - lr * weight_decay if decoupled_weight_decay else 1.0
    return cpu_kernels.adam_step, _scalars(
        dtype, step_size=lr / bias1, beta1=beta1, one_minus_beta1=1 - beta1, beta2=beta2,
        one_minus_beta2=1 - beta2, eps=eps, weight_decay=coupled, decay_factor=decay,
        inv_sqrt_bias2=1 / bias2 ** 0.5)


def adam_step(param, grad, exp_avg, exp_avg_sq, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, step=1, decoupled_weight_decay=False):
    """Adam (weight decay added to the gradient) or, with decoupled_weight_decay, AdamW
    (param *= 1 - lr * weight_decay first). `step` is this update's count, from 1."""
    prepare_adam(param, grad, exp_avg, exp_avg_sq, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                 weight_decay=weight_decay, step=step,
                 decoupled_weight_decay=decoupled_weight_decay).run()
