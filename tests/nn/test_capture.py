"""A captured step is the eager step, bit for bit: losses, outputs, parameters, their
gradients, the optimizer's state and the library's random state, over many steps."""
import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn, optim
from kernelgrad.nn.capture import supports

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.05),
    "sgd-nesterov": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                        weight_decay=1e-4),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.05, lr_decay=1e-3),
    "rmsprop-centered": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "adam": lambda p: optim.Adam(p, lr=0.01, weight_decay=1e-4),
    "adamw": lambda p: optim.AdamW(p, lr=0.01),
}
LOSSES = {"cross_entropy": nn.CrossEntropyLoss, "mse": nn.MSELoss,
          "bce": nn.BCEWithLogitsLoss}


def build(dtype, activation="relu"):
    kg.manual_seed(7)
    return nn.Sequential(
        nn.Linear(12, 32, activation=activation, dtype=dtype), nn.Dropout(0.25),
        nn.Linear(32, 16, dtype=dtype), nn.GELU(), nn.Dropout(0.1),
        nn.Linear(16, 16, dtype=dtype), nn.Tanh(), nn.Linear(16, 5, dtype=dtype))


def build_relu_dropout(dtype, activation):
    """A ReLU before each dropout (a layer's and a module), one layer without a bias."""
    kg.manual_seed(7)
    return nn.Sequential(
        nn.Linear(12, 40, activation=activation, dtype=dtype), nn.Dropout(0.3),
        nn.Linear(40, 24, bias=False, dtype=dtype), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(24, 5, dtype=dtype))


def batches(loss, dtype, steps, rows=24):
    rng = np.random.default_rng(3)
    for i in range(steps):
        n = rows if i % 10 != 9 else rows // 3  # a short batch among them
        x = rng.standard_normal((n, 12)).astype(dtype)
        if loss == "cross_entropy":
            y = rng.integers(0, 5, n) if i % 2 else rng.integers(0, 5, n).astype(np.int32)
        elif loss == "bce":
            y = rng.integers(0, 2, (n, 5)).astype(dtype)
        else:
            y = rng.standard_normal((n, 5)).astype(dtype)
        yield x, y


def state(model, optimizer):
    out = [p.data.copy() for p in model.parameters()]
    out += [p.grad.data.copy() for p in model.parameters() if p.grad is not None]
    for s in optimizer.state.values():
        out += [np.asarray(v).copy() for v in s.values()]
    return out


def rng_state():
    return np.array(sorted(kg.get_rng_state().items()), dtype=object).astype(str)


def assert_same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.dtype == v.dtype and u.shape == v.shape
        assert u.tobytes() == v.tobytes()


def train(step_of, loss, opt, dtype, steps, activation="relu", make=build, rows=24):
    model = make(dtype, activation)
    optimizer = OPTIMIZERS[opt](model.parameters())
    step = step_of(model, LOSSES[loss](), optimizer)
    kg.manual_seed(11)  # the dropout stream
    results = []
    for i, (x, y) in enumerate(batches(loss, dtype, steps, rows)):
        if i == steps // 2:
            optimizer.param_groups[0]["lr"] *= 0.5  # a schedule's change is read per call
        if i == steps // 3:  # a checkpoint restored: the state arrays are new ones
            optimizer.load_state_dict(optimizer.state_dict())
        value, outputs = step(x, y)
        results += [np.asarray(value).copy(), np.asarray(outputs).copy()]
    return results + state(model, optimizer) + [rng_state()]


def eager(model, loss_fn, optimizer):
    def step(x, y):
        optimizer.zero_grad()
        out = model(kg.Tensor(x))
        value = loss_fn(out, kg.Tensor(y))
        value.backward()
        optimizer.step()
        return value.data, out.data
    return step


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_captured_steps_are_the_eager_steps(loss, opt):
    dtype = np.float32
    assert_same(train(eager, loss, opt, dtype, 100), train(kg.capture, loss, opt, dtype, 100))


@pytest.mark.parametrize("activation", ["gelu", "leaky_relu", "sigmoid", None])
def test_fused_activations_and_float64(activation):
    args = ("cross_entropy", "adam", np.float64, 30, activation)
    assert_same(train(eager, *args), train(kg.capture, *args))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_then_dropout_goes_back_in_one_pass(dtype):
    """A ReLU followed by dropout goes back in one fused pass from the dropout's output,
    with the eager step's bits; 520 rows: four bands of the bias's column sums, and a
    short batch of one band."""
    args = ("cross_entropy", "adam", dtype, 20, "relu", build_relu_dropout, 520)
    assert_same(train(eager, *args), train(kg.capture, *args))
    model = build_relu_dropout(dtype, "relu")
    step = kg.capture(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters()))
    x, y = next(batches("cross_entropy", dtype, 1))
    step(x, y)
    (plan,) = step.plans.values()
    fused = [type(s).__name__ for s, dropout in plan.backward if dropout is not None]
    assert fused == ["_Activation", "_Linear"]


def test_eval_mode_and_a_changed_optimizer_record_again():
    model = build(np.float32)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    step = kg.capture(model, nn.CrossEntropyLoss(), optimizer)
    data = [(x, y.astype(np.int64)) for x, y in batches("cross_entropy", np.float32, 4)]
    for x, y in data[:2]:
        step(x, y)
    model.eval()
    step(*data[2])
    optimizer.param_groups[0]["momentum"] = 0.9
    model.train()
    step(*data[3])
    assert len(step.plans) == 3


def test_a_refused_replay_changes_nothing():
    model = build(np.float32)
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    step = kg.capture(model, nn.CrossEntropyLoss(), optimizer)
    x, y = next(batches("cross_entropy", np.float32, 1))
    step(x, y)
    step(x, y)  # recorded and replayed
    before = state(model, optimizer) + [rng_state()]
    bad = y.copy()
    bad[3] = 5
    with pytest.raises(ValueError, match="label 5 is outside"):
        step(x, bad)
    with pytest.raises(TypeError, match="labels must be integers"):
        step(x, y.astype(np.float32))
    assert_same(before, state(model, optimizer) + [rng_state()])


def _reused(layer):
    return nn.Sequential(layer, nn.Dropout(0.1), layer, nn.Linear(4, 2))


@pytest.mark.parametrize("why, make", [
    ("layer Flatten", lambda: (nn.Sequential(nn.Flatten(), nn.Linear(4, 2)),
                               nn.CrossEntropyLoss())),
    ("label smoothing", lambda: (nn.Sequential(nn.Linear(4, 2)),
                                 nn.CrossEntropyLoss(label_smoothing=0.1))),
    ("without reduction", lambda: (nn.Sequential(nn.Linear(4, 2)),
                                   nn.MSELoss(reduction="none"))),
    ("used at two places", lambda: (_reused(nn.Linear(4, 4, activation="relu")),
                                    nn.CrossEntropyLoss())),
])
def test_what_cannot_be_captured_says_why(why, make):
    model, loss_fn = make()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    assert not supports(model, loss_fn, optimizer)
    with pytest.raises(ValueError, match=why):
        kg.capture(model, loss_fn, optimizer)
