"""Launchers for optim.cu: in place on parameters and their state (flat CuPy arrays).

Each function takes a list of tensors, one tuple (param, grad, *state) per parameter, and
updates them all with the same hyper-parameters: one launch per TENSORS of them."""
from .._spec import OPTIM_TENSORS_PER_LAUNCH as TENSORS
from . import _module as m

STATE_SLOTS = 3


def _launch(kernel, tensors, scalars):
    for start in range(0, len(tensors), TENSORS):
        chunk = tensors[start:start + TENSORS]
        blocks = [m.grid(param.size) for param, *_ in chunk]
        total = sum(blocks)
        args, first = [], 0
        for (param, grad, *state), count in zip(chunk, blocks):
            state = [m.NULL if s is None else s for s in state]
            state += [m.NULL] * (STATE_SLOTS - len(state))
            args += [param, grad, *state, m.i64(param.size), m.i32(first)]
            first += count
        unused = [m.NULL] * (2 + STATE_SLOTS) + [m.i64(0), m.i32(total)]  # never picked
        args += unused * (TENSORS - len(chunk))
        m.launch("optim", kernel, total, m.BLOCK, (*args, *scalars))


def sgd_step(tensors, lr, momentum, grad_scale, weight_decay, use_momentum, nesterov,
             first_step):
    """tensors: (param, grad, momentum_buf or NULL)."""
    _launch("sgd_step", tensors, (m.f32(lr), m.f32(momentum), m.f32(grad_scale),
                                  m.f32(weight_decay), m.i32(use_momentum), m.i32(nesterov),
                                  m.i32(first_step)))


def adagrad_step(tensors, clr, weight_decay, eps):
    """tensors: (param, grad, state_sum)."""
    _launch("adagrad_step", tensors, (m.f32(clr), m.f32(weight_decay), m.f32(eps)))


def rmsprop_step(tensors, lr, alpha, eps, weight_decay, momentum, use_momentum, centered):
    """tensors: (param, grad, square_avg, grad_avg or NULL, momentum_buf or NULL)."""
    _launch("rmsprop_step", tensors, (m.f32(lr), m.f32(alpha), m.f32(1 - alpha), m.f32(eps),
                                      m.f32(weight_decay), m.f32(momentum),
                                      m.i32(use_momentum), m.i32(centered)))


def adam_step(tensors, step_size, beta1, beta2, eps, weight_decay, decay_factor,
              inv_sqrt_bias2):
    """tensors: (param, grad, exp_avg, exp_avg_sq)."""
    # 1 - beta in double, then rounded: the kernel's 1.0f - beta would round beta first
    _launch("adam_step", tensors, (m.f32(step_size), m.f32(beta1), m.f32(1 - beta1),
                                   m.f32(beta2), m.f32(1 - beta2), m.f32(eps),
                                   m.f32(weight_decay), m.f32(decay_factor),
                                   m.f32(inv_sqrt_bias2)))
