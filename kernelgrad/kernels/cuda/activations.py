"""Launchers for activations.cu: one kernel per activation and direction, named after
the activation whose id (cpu/_math.py's ACT_*, nonzero) the callers pass."""
from ..cpu._math import ACTIVATIONS
from . import _module as m


def forward(x, act, alpha):
    y = m.empty(x.shape)
    n = x.size
    m.launch("activations", f"{ACTIVATIONS[act - 1]}_forward", m.grid((n + 3) // 4), m.BLOCK,
             (x, y, m.i64(n), m.f32(alpha), m.i32(m.aligned(x, y))))
    return y


def backward(dy, saved, act, alpha):
    dx = m.empty(dy.shape)
    n = dy.size
    m.launch("activations", f"{ACTIVATIONS[act - 1]}_backward", m.grid((n + 3) // 4), m.BLOCK,
             (dy, saved, dx, m.i64(n), m.f32(alpha), m.i32(m.aligned(dy, saved, dx))))
    return dx
