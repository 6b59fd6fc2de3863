"""The same numbers as PyTorch (torch==2.13.0, CPU, float64): losses and gradients of
random MLPs given the same weights, and parameters after 10 steps of each optimizer."""
import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn
from kernelgrad.nn import functional as F

torch = pytest.importorskip("torch")

RTOL = 1e-6
TORCH_ACTIVATIONS = {
    None: lambda: torch.nn.Identity(), "relu": lambda: torch.nn.ReLU(),
    "leaky_relu": lambda: torch.nn.LeakyReLU(0.01), "sigmoid": lambda: torch.nn.Sigmoid(),
    "tanh": lambda: torch.nn.Tanh(), "gelu": lambda: torch.nn.GELU(approximate="tanh"),
}


def twin_mlps(activation, widths, seed):
    """Our MLP and a torch.nn.Sequential with the same weights (torch stores W^T)."""
    kg.manual_seed(seed)
    ours, theirs = [], []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        act = activation if i < len(widths) - 2 else None
        layer = nn.Linear(n_in, n_out, activation=act, dtype=np.float64)
        layer.bias.data[:] = np.random.default_rng(seed + i).standard_normal(n_out) * 0.1
        twin = torch.nn.Linear(n_in, n_out, dtype=torch.float64)
        with torch.no_grad():
            twin.weight.copy_(torch.from_numpy(layer.weight.data.T))
            twin.bias.copy_(torch.from_numpy(layer.bias.data))
        ours.append(layer)
        theirs += [twin, TORCH_ACTIVATIONS[act]()]
    return nn.Sequential(*ours), torch.nn.Sequential(*theirs)


def torch_grads(model):
    """Gradients in our layout: weight (in, out), bias (out,)."""
    grads = []
    for module in model:
        if isinstance(module, torch.nn.Linear):
            grads += [module.weight.grad.numpy().T, module.bias.grad.numpy()]
    return grads


LOSSES = {
    "cross_entropy": (lambda rng, n, c: rng.integers(0, c, n), F.cross_entropy,
                      lambda z, y: torch.nn.functional.cross_entropy(z, torch.from_numpy(y))),
    "bce": (lambda rng, n, c: rng.integers(0, 2, (n, c)).astype(np.float64),
            F.binary_cross_entropy_with_logits,
            lambda z, y: torch.nn.functional.binary_cross_entropy_with_logits(
                z, torch.from_numpy(y))),
    "mse": (lambda rng, n, c: rng.standard_normal((n, c)), F.mse_loss,
            lambda z, y: torch.nn.functional.mse_loss(z, torch.from_numpy(y))),
}


@pytest.mark.parametrize("activation", list(TORCH_ACTIVATIONS))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_mlp_loss_and_gradients_match_pytorch(rng, activation, loss):
    widths = [13, 32, 17, 5]
    make_target, ours_loss, torch_loss = LOSSES[loss]
    ours, theirs = twin_mlps(activation, widths, seed=int(rng.integers(1 << 30)))
    x = rng.standard_normal((33, widths[0])) * 2
    target = make_target(rng, 33, widths[-1])
    x_ours = kg.Tensor(x, requires_grad=True)
    x_torch = torch.tensor(x, requires_grad=True)
    value = ours_loss(ours(x_ours), target)
    value.backward()
    expected = torch_loss(theirs(x_torch), target)
    expected.backward()
    np.testing.assert_allclose(value.item(), expected.item(), rtol=RTOL)
    np.testing.assert_allclose(x_ours.grad, x_torch.grad.numpy(), rtol=RTOL,
                               atol=RTOL * np.abs(x_torch.grad.numpy()).max())
    for ours_grad, torch_grad in zip([p.grad for p in ours.parameters()], torch_grads(theirs)):
        np.testing.assert_allclose(ours_grad, torch_grad, rtol=RTOL,
                                   atol=RTOL * np.abs(torch_grad).max())


OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
]


@pytest.mark.parametrize("name,options", OPTIMIZERS,
                         ids=[f"{n}-{'-'.join(o)}" for n, o in OPTIMIZERS])
def test_optimizer_matches_torch_optim_after_10_steps(rng, name, options):
    """Train the twin MLPs side by side on the same batches for 10 steps."""
    ours, theirs = twin_mlps("tanh", [6, 16, 3], seed=7)
    ours_opt = getattr(kg.optim, name)(ours.parameters(), **options)
    torch_opt = getattr(torch.optim, name)(theirs.parameters(), **options)
    for _ in range(10):
        x, labels = rng.standard_normal((20, 6)), rng.integers(0, 3, 20)
        ours_opt.zero_grad()
        F.cross_entropy(ours(x), labels).backward()
        ours_opt.step()
        torch_opt.zero_grad()
        torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)),
                                          torch.from_numpy(labels)).backward()
        torch_opt.step()
    torch_params = [m.weight.detach().numpy().T for m in theirs if isinstance(m, torch.nn.Linear)]
    torch_biases = [m.bias.detach().numpy() for m in theirs if isinstance(m, torch.nn.Linear)]
    expected = [p for pair in zip(torch_params, torch_biases) for p in pair]
    for param, want in zip(ours.parameters(), expected):
        np.testing.assert_allclose(param.data, want, rtol=RTOL, atol=RTOL * np.abs(want).max())


@pytest.mark.parametrize("scheduler", ["step", "plateau"])
def test_lr_schedules_match_torch(scheduler):
    param = kg.Tensor(np.zeros(3), requires_grad=True)
    torch_param = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    ours_opt, torch_opt = kg.optim.SGD([param], lr=1.0), torch.optim.SGD([torch_param], lr=1.0)
    if scheduler == "step":
        ours = kg.optim.StepLR(ours_opt, step_size=3, gamma=0.5)
        theirs = torch.optim.lr_scheduler.StepLR(torch_opt, step_size=3, gamma=0.5)
        metrics = [None] * 10
    else:
        ours = kg.optim.ReduceLROnPlateau(ours_opt, factor=0.5, patience=2, cooldown=1)
        theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, factor=0.5, patience=2,
                                                            cooldown=1)
        metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85]
    for metric in metrics:
        torch_opt.step()
        if metric is None:
            ours.step()
            theirs.step()
        else:
            ours.step(metric)
            theirs.step(metric)
        assert ours_opt.param_groups[0]["lr"] == pytest.approx(torch_opt.param_groups[0]["lr"])


EPOCH_SCHEDULES = {
    "multistep": lambda lib, opt: lib.optim.lr_scheduler.MultiStepLR(opt, [0, 3, 7, 7], 0.5),
    "lambda": lambda lib, opt: lib.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.9 ** e + 0.1),
    "lambda per group": lambda lib, opt: lib.optim.lr_scheduler.LambdaLR(
        opt, [lambda e: 1.0 / (e + 1), lambda e: 0.5 * e]),
    "cosine": lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingLR(opt, 5, 0.01),
    "exponential": lambda lib, opt: lib.optim.lr_scheduler.ExponentialLR(opt, 0.8),
}


@pytest.mark.parametrize("name", list(EPOCH_SCHEDULES))
def test_epoch_schedules_give_torchs_rates(name):
    """Each group's rate from construction on, over 12 epochs (two groups)."""
    ours_opt = kg.optim.SGD([{"params": [kg.Tensor(np.zeros(2), requires_grad=True)]},
                             {"params": [kg.Tensor(np.zeros(2), requires_grad=True)],
                              "lr": 0.3}], lr=1.0)
    torch_opt = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)]},
                                 {"params": [torch.zeros(2, requires_grad=True)], "lr": 0.3}],
                                lr=1.0)
    ours, theirs = EPOCH_SCHEDULES[name](kg, ours_opt), EPOCH_SCHEDULES[name](torch, torch_opt)
    for _ in range(12):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
        assert [g["lr"] for g in ours_opt.param_groups] == \
            pytest.approx([g["lr"] for g in torch_opt.param_groups], rel=1e-12)
        torch_opt.step()
        ours.step()
        theirs.step()
    assert "lr_lambdas" not in ours.state_dict()  # functions are not state


def test_a_layer_used_twice_trains_as_in_torch(rng):
    """One Linear at two places of a Sequential: parameters() holds it once (an optimizer
    accepts it), state_dict names both places, the gradient sums both uses, and fit()
    (which cannot record such a step) trains it eagerly, as PyTorch does."""
    kg.manual_seed(3)
    shared, head = nn.Linear(6, 6, activation="tanh", dtype=np.float64), \
        nn.Linear(6, 3, dtype=np.float64)
    model = nn.Sequential(shared, shared, head)
    t_shared, t_head = torch.nn.Linear(6, 6, dtype=torch.float64), \
        torch.nn.Linear(6, 3, dtype=torch.float64)
    with torch.no_grad():
        for twin, layer in ((t_shared, shared), (t_head, head)):
            twin.weight.copy_(torch.from_numpy(layer.weight.data.T))
            twin.bias.copy_(torch.from_numpy(layer.bias.data))
    twin = torch.nn.Sequential(t_shared, torch.nn.Tanh(), t_shared, torch.nn.Tanh(), t_head)
    assert [n for n, _ in model.named_parameters()] == \
        [n for n, _ in twin.named_parameters()][:2] + ["2.weight", "2.bias"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                        "2.weight", "2.bias"]
    assert len(list(model.modules())) == 3 and len(list(model.parameters())) == 4
    x, y = rng.standard_normal((16, 6)), rng.integers(0, 3, 16)
    ours = kg.optim.Adam(model.parameters(), lr=0.05)
    theirs = torch.optim.Adam(twin.parameters(), lr=0.05)
    model.compile(ours, loss=nn.CrossEntropyLoss())
    model.fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0)
    for _ in range(5):
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)),
                                          torch.from_numpy(y)).backward()
        theirs.step()
    for param, expected in zip(model.parameters(), [t_shared.weight.detach().numpy().T,
                                                    t_shared.bias.detach().numpy(),
                                                    t_head.weight.detach().numpy().T,
                                                    t_head.bias.detach().numpy()]):
        np.testing.assert_allclose(param.data, expected, rtol=RTOL, atol=1e-12)
