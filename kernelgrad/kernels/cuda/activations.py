"""Launchers for activations.cu: one kernel per activation and direction."""
from . import _module as m


def forward(x, name, alpha):
    y = m.empty(x.shape)
    n = x.size
    m.launch("activations", f"{name}_forward", m.grid((n + 3) // 4), m.BLOCK,
             (x, y, m.i64(n), m.f32(alpha), m.i32(m.aligned(x, y))))
    return y


def backward(dy, saved, name, alpha):
    dx = m.empty(dy.shape)
    n = dy.size
    m.launch("activations", f"{name}_backward", m.grid((n + 3) // 4), m.BLOCK,
             (dy, saved, dx, m.i64(n), m.f32(alpha), m.i32(m.aligned(dy, saved, dx))))
    return dx
