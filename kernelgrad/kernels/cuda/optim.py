"""Launchers for optim.cu: in place on the parameter and its state (flat CuPy arrays)."""
from . import _module as m


def _launch(kernel, n, args):
    m.launch("optim", kernel, m.grid(n), m.BLOCK, args)


def sgd_step(param, grad, buf, lr, momentum, grad_scale, weight_decay, use_momentum,
             nesterov, first_step):
    n = param.size
    _launch("sgd_step", n, (param, grad, buf, m.i64(n), m.f32(lr), m.f32(momentum),
                            m.f32(grad_scale), m.f32(weight_decay), m.i32(use_momentum),
                            m.i32(nesterov), m.i32(first_step)))


def adagrad_step(param, grad, state_sum, clr, weight_decay, eps):
    n = param.size
    _launch("adagrad_step", n, (param, grad, state_sum, m.i64(n), m.f32(clr),
                                m.f32(weight_decay), m.f32(eps)))


def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buf, lr, alpha, eps,
                 weight_decay, momentum, use_momentum, centered):
    n = param.size
    _launch("rmsprop_step", n, (param, grad, square_avg, grad_avg, momentum_buf, m.i64(n),
                                m.f32(lr), m.f32(alpha), m.f32(eps), m.f32(weight_decay),
                                m.f32(momentum), m.i32(use_momentum), m.i32(centered)))


def adam_step(param, grad, exp_avg, exp_avg_sq, step_size, beta1, beta2, eps, weight_decay,
              decay_factor, inv_sqrt_bias2):
    n = param.size
    _launch("adam_step", n, (param, grad, exp_avg, exp_avg_sq, m.i64(n), m.f32(step_size),
                             m.f32(beta1), m.f32(beta2), m.f32(eps), m.f32(weight_decay),
                             m.f32(decay_factor), m.f32(inv_sqrt_bias2)))
