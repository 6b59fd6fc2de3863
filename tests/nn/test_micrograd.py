"""micrograd's engine tests (karpathy/micrograd, test/test_engine.py: the sanity check, the
chain of more ops; and the tanh and exp of its later neuron), run with 0-d kernelgrad
tensors where micrograd has its scalar Value, against PyTorch as the oracle."""
import pytest

import kernelgrad as kg

torch = pytest.importorskip("torch")


def value(x):
    return kg.tensor(x, requires_grad=True, dtype=kg.float64)


def torch_value(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def sanity_check(make):
    x = make(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    return x, y


def test_sanity_check():
    xmg, ymg = sanity_check(value)
    xpt, ypt = sanity_check(torch_value)
    assert ymg.shape == () and xmg.grad.shape == ()
    assert ymg.data == ypt.data.item()  # forward
    assert xmg.grad == xpt.grad.item()  # backward


def more_ops(make):
    a = make(-4.0)
    b = make(2.0)
    c = a + b
    d = a * b + b ** 3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e ** 2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    return a, b, g


def test_more_ops():
    amg, bmg, gmg = more_ops(value)
    apt, bpt, gpt = more_ops(torch_value)
    tol = 1e-6
    assert abs(gmg.data - gpt.data.item()) < tol
    assert abs(amg.grad - apt.grad.item()) < tol
    assert abs(bmg.grad - bpt.grad.item()) < tol


def neuron(make):
    """micrograd's lecture neuron: o = tanh(x1 w1 + x2 w2 + b), then e = exp(2 o)."""
    x1, x2, w1, w2, b = (make(v) for v in (2.0, 0.0, -3.0, 1.0, 6.8813735870195432))
    o = (x1 * w1 + x2 * w2 + b).tanh()
    e = (2 * o).exp()
    (e - 1).backward()
    return o, e, (x1, x2, w1, w2, b)


def test_tanh_and_exp():
    omg, emg, leaves_mg = neuron(value)
    opt, ept, leaves_pt = neuron(torch_value)
    assert abs(omg.data - opt.item()) < 1e-12 and abs(emg.data - ept.item()) < 1e-12
    for ours, theirs in zip(leaves_mg, leaves_pt):
        assert abs(ours.grad.item() - theirs.grad.item()) < 1e-12
