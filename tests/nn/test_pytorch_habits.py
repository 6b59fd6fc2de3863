"""The PyTorch habits a user brings: each as torch does it (torch==2.13.0 as the oracle
where numbers are involved)."""
from collections import OrderedDict

import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn
from kernelgrad.nn import functional as F

torch = pytest.importorskip("torch")


def test_comparisons_give_boolean_tensors_and_accuracy_reads_as_in_torch():
    pred, y = kg.tensor([1, 2, 3]), kg.tensor([1, 0, 3])
    same = pred == y
    assert isinstance(same, kg.Tensor) and same.dtype == np.bool_
    assert same.sum().item() == 2 and (pred != y).tolist() == [False, True, False]
    assert (pred > 1).tolist() == [False, True, True] and (pred <= 2).tolist() == [True, True,
                                                                                   False]
    assert pred.eq(y).float().mean().item() == pytest.approx(2 / 3)
    assert bool(kg.tensor(0.0)) is False and int(kg.tensor([3.7])) == 3
    assert float(kg.tensor(2.5)) == 2.5 and kg.tensor([1.0, 2.0]).equal(kg.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(kg.tensor([1.0, 2.0]))
    assert len({kg.tensor(1.0), kg.tensor(1.0)}) == 2  # hashed by identity, as in torch


def test_in_place_updates_outside_autograd_train_a_parameter():
    p = nn.Parameter(np.ones(3, np.float32))
    (p * p).sum().backward()
    with kg.no_grad():
        p -= 0.1 * p.grad
    np.testing.assert_allclose(p.data, 0.8)
    assert isinstance(p.grad, kg.Tensor)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        p += 1
    p.grad.zero_()
    assert p.grad.sum().item() == 0


def test_tensor_methods_match_torch(rng):
    a = rng.standard_normal((3, 4))
    ours, theirs = kg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    ops = [lambda t: t.abs().sqrt(), lambda t: t.clamp(-0.5, 0.5), lambda t: t.max(),
           lambda t: t.min(dim=1).values, lambda t: t.max(dim=0, keepdim=True)[0],
           lambda t: t.view(4, 3).t(), lambda t: t.unsqueeze(1).squeeze(),
           lambda t: t.flatten(), lambda t: t.transpose(0, 1),
           lambda t: t.sum(dim=1, keepdim=True), lambda t: t.mean(dim=0),
           lambda t: t.softmax(dim=1), lambda t: t.log_softmax(dim=0),
           lambda t: t.clone() * 2, lambda t: t.exp().log(), lambda t: t.pow(2) + t.pow(3)]
    for f in ops:
        got, want = f(ours), f(theirs)
        np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=1e-12)
        ours.grad, theirs.grad = None, None
        weights = np.arange(got.numel()).reshape(got.shape) + 1.0
        (got * kg.tensor(weights)).sum().backward()
        (want * torch.tensor(weights)).sum().backward()
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert ours.argmax(dim=1).tolist() == theirs.argmax(dim=1).tolist()
    assert ours.size() == (3, 4) and ours.size(1) == 4 and ours.numel() == 12 and ours.dim() == 2
    assert ours.detach().requires_grad is False and ours.cpu() is ours
    loss = ours.sum()
    assert f"{loss:.3f}" == f"{theirs.sum():.3f}" and f"{loss}" == str(loss.item())
    assert kg.argmax(ours, dim=0).tolist() == torch.argmax(theirs, dim=0).tolist()


def test_factories_and_dtype_names():
    kg.manual_seed(0)
    assert kg.zeros(2, 3).dtype == kg.float32 and kg.ones((2,)).tolist() == [1.0, 1.0]
    assert kg.arange(5).dtype == kg.int64 and kg.arange(0.0, 1.0, 0.5).tolist() == [0.0, 0.5]
    assert kg.randn(4, 2).shape == (4, 2) and kg.full((2,), 7.0).tolist() == [7.0, 7.0]
    a = np.arange(6.0).reshape(2, 3)
    shared = kg.from_numpy(a)
    shared.data[0, 0] = 9
    assert a[0, 0] == 9 and shared.dtype == kg.float64
    x, y = kg.tensor([1.0, 2.0], requires_grad=True), kg.tensor([3.0], requires_grad=True)
    joined = kg.cat([x, y])
    stacked = kg.stack([x, x * 2], dim=1)
    (joined.sum() + stacked.sum()).backward()
    assert x.grad.tolist() == [4.0, 4.0] and y.grad.tolist() == [1.0]
    assert stacked.shape == (2, 2)


# torch.<name>(x, *args) and the method forms a script calls, with their gradients
TOP_LEVEL = [("sigmoid", ()), ("tanh", ()), ("relu", ()), ("abs", ()), ("sqrt", ()),
             ("square", ()), ("softmax", (1,)), ("log_softmax", (0,)), ("sum", ()),
             ("sum", (1,)), ("mean", (0,)), ("std", ()), ("std", (1,)), ("var", (0,)),
             ("clamp", (-0.5, 0.5)), ("flatten", ()), ("t", ()), ("transpose", (0, 1)),
             ("unsqueeze", (0,)), ("reshape", ((4, 3),)), ("pow", (3,)), ("add", (2.0,)),
             ("sub", (1.5,)), ("mul", (3.0,)), ("div", (4.0,))]


@pytest.mark.parametrize("name, args", TOP_LEVEL, ids=[f"{n}{a}" for n, a in TOP_LEVEL])
def test_top_level_functions_match_torch(rng, name, args):
    a = np.abs(rng.standard_normal((3, 4))) + 0.1  # sqrt's domain
    ours, theirs = kg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    got, want = getattr(kg, name)(ours, *args), getattr(torch, name)(theirs, *args)
    np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=1e-12)
    weights = np.arange(got.numel()).reshape(got.shape) + 1.0
    (got * kg.tensor(weights)).sum().backward()
    (want * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_method_forms_of_the_operators_match_torch(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    x, w = kg.tensor(a, requires_grad=True), kg.tensor(b, requires_grad=True)
    tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    got = x.mm(w).add(x.matmul(w), alpha=2).sub(x.mm(w).square(), alpha=0.5).mul(3).div(7)
    want = tx.mm(tw).add(tx.matmul(tw), alpha=2).sub(tx.mm(tw).square(), alpha=0.5).mul(3) \
        .div(7)
    np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=1e-12)
    got.sum().backward()
    want.sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.data, tw.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(kg.var(x, 1, unbiased=False).data,
                               torch.var(tx, 1, unbiased=False).detach().numpy(), rtol=1e-12)
    assert x.contiguous() is x and x.type_as(kg.zeros(1)).dtype == kg.float32
    assert kg.max(x, 1).indices.tolist() == torch.max(tx, 1).indices.tolist()
    assert kg.numel(x) == 12 and kg.is_tensor(x) and not kg.is_tensor(a)
    assert kg.allclose(x, a) and not kg.allclose(x, a + 1e-3)
    with pytest.raises(ValueError, match="2-D"):
        kg.mm(x, kg.ones(4))
    with pytest.raises(TypeError, match="kg.where"):
        kg.max(x, x)  # torch's elementwise max of two tensors


def test_random_and_other_factories_as_torch_shapes_them():
    kg.manual_seed(5)
    ints = kg.randint(3, 7, (200,))
    perm = kg.randperm(10)
    kg.manual_seed(5)
    assert kg.randint(3, 7, (200,)).tolist() == ints.tolist()  # from the library's seed
    assert ints.dtype == kg.int64 and set(ints.tolist()) == {3, 4, 5, 6}
    assert kg.randint(4, (2, 3)).shape == (2, 3) and sorted(perm.tolist()) == list(range(10))
    assert perm.dtype == kg.int64
    np.testing.assert_array_equal(kg.eye(3, 2).data, torch.eye(3, 2).numpy())
    np.testing.assert_allclose(kg.linspace(-1, 2, 7).data, torch.linspace(-1, 2, 7).numpy())
    assert kg.eye(2).dtype == kg.float32 and kg.empty(2, 3).shape == (2, 3)
    x = kg.ones(2, 5, dtype=kg.float64)
    for like in (kg.full_like(x, 3.0), kg.randn_like(x), kg.rand_like(x)):
        assert like.shape == (2, 5) and like.dtype == kg.float64
    assert kg.full_like(x, 3.0).tolist() == [[3.0] * 5] * 2
    with pytest.raises(TypeError, match="size"):
        kg.randint(5)


def test_grad_modes():
    x = kg.tensor([1.0], requires_grad=True)
    with kg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with kg.enable_grad():
            assert (x * 2).requires_grad
    with kg.inference_mode():
        assert not (x * 2).requires_grad

    @kg.no_grad()
    def frozen():
        return x * 2
    assert not frozen().requires_grad and kg.is_grad_enabled()


def test_module_conveniences():
    model = nn.Sequential(OrderedDict([("fc1", nn.Linear(3, 4)), ("act", nn.ReLU()),
                                       ("fc2", nn.Linear(4, 2))]))
    assert [n for n, _ in model.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight",
                                                        "fc2.bias"]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head.fc1 is model.fc1
    model.apply(lambda m: nn.init.zeros_(m.bias) if isinstance(m, nn.Linear) else None)
    assert all((m.bias.data == 0).all() for m in model if isinstance(m, nn.Linear))
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    holder = nn.Sequential(nn.Identity())
    holder.layers = layers
    assert len(list(holder.parameters())) == 6 and isinstance(layers[1:], nn.ModuleList)
    assert [n for n, _ in model.named_modules()] == ["", "fc1", "act", "fc2"]


def test_initializers_follow_torch_formulas():
    w = nn.Parameter(np.zeros((300, 200), np.float32))
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    assert np.abs(w.data).max() <= np.sqrt(6 / 300) and w.data.std() == pytest.approx(
        np.sqrt(2 / 300), rel=0.05)
    nn.init.xavier_normal_(w)
    assert w.data.std() == pytest.approx(np.sqrt(2 / 500), rel=0.05)
    assert nn.init.calculate_gain("tanh") == torch.nn.init.calculate_gain("tanh")


@pytest.mark.parametrize("options", [dict(), dict(weight=[0.5, 2.0, 1.0, 3.0]),
                                     dict(label_smoothing=0.1),
                                     dict(weight=[0.5, 2.0, 1.0, 3.0], label_smoothing=0.2),
                                     dict(reduction="sum", label_smoothing=0.3)])
def test_cross_entropy_options_match_torch(rng, options):
    z = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, (6, 1))  # a column of labels, as Keras users have them
    ours = kg.tensor(z, requires_grad=True)
    theirs = torch.tensor(z, requires_grad=True)
    kw = dict(options)
    if "weight" in kw:
        kw_t = dict(kw, weight=torch.tensor(kw["weight"], dtype=torch.float64))
        kw["weight"] = np.array(kw["weight"])
    else:
        kw_t = kw
    loss = F.cross_entropy(ours, labels, **kw)
    want = torch.nn.functional.cross_entropy(theirs, torch.tensor(labels[:, 0]), **kw_t)
    loss.backward()
    want.backward()
    assert loss.item() == pytest.approx(want.item(), rel=1e-12)
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-10, atol=1e-14)
    log_p = F.log_softmax(kg.tensor(z), dim=1)
    assert F.nll_loss(log_p, labels[:, 0]).item() == pytest.approx(
        torch.nn.functional.nll_loss(torch.log_softmax(torch.tensor(z), 1),
                                     torch.tensor(labels[:, 0])).item(), rel=1e-12)


def test_targets_shaped_n_or_n_by_1_are_read_as_the_output(rng):
    out = kg.tensor(rng.standard_normal((5, 1)), requires_grad=True)
    t = rng.integers(0, 2, 5).astype(np.float64)
    for fn in (F.mse_loss, F.binary_cross_entropy_with_logits):
        assert fn(out, t).item() == pytest.approx(fn(out, t.reshape(5, 1)).item())


def test_clip_grad_norm_matches_torch(rng):
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    ours = [kg.tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = g.copy(), torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ours, 1.0)
    want = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total.item() == pytest.approx(want.item())
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-6)


def test_optimizer_and_schedule_state_dicts_and_closures():
    model = nn.Linear(3, 2)
    opt = kg.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    schedule = kg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    x = kg.tensor(np.ones((2, 3), np.float32))

    def closure():
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()
        return loss
    assert isinstance(opt.step(closure), kg.Tensor)
    schedule.step()
    saved_opt, saved_schedule = opt.state_dict(), schedule.state_dict()
    assert saved_opt["param_groups"][0]["params"] == [0, 1]
    assert schedule.get_last_lr() == [opt.param_groups[0]["lr"]]
    fresh = kg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    fresh_schedule = kg.optim.lr_scheduler.CosineAnnealingLR(fresh, T_max=4)
    fresh.load_state_dict(saved_opt)
    fresh_schedule.load_state_dict(saved_schedule)
    assert fresh.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    np.testing.assert_array_equal(fresh.state[id(model.weight)]["momentum_buffer"],
                                  opt.state[id(model.weight)]["momentum_buffer"])
    theirs = torch.optim.lr_scheduler.CosineAnnealingLR(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5), T_max=4)
    ours = kg.optim.lr_scheduler.CosineAnnealingLR(
        kg.optim.SGD([kg.tensor([0.0], requires_grad=True)], lr=0.5), T_max=4)
    for _ in range(6):
        theirs.optimizer.step()
        theirs.step()
        ours.step()
        assert ours.get_last_lr()[0] == pytest.approx(theirs.get_last_lr()[0])


def test_a_pytorch_state_dict_loads_with_the_torch_layout():
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    ours = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"0.weight.*shape \(4, 3\)"):
        ours.load_state_dict(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), layout="torch")
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(x).data, theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5)
    back = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    back.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                          for k, v in ours.state_dict(layout="torch").items()})
    np.testing.assert_allclose(back(torch.from_numpy(x)).detach().numpy(), ours(x).data,
                               rtol=1e-5)


def test_tensors_pass_to_and_from_torch_and_numpy_without_copies():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    ours = kg.from_dlpack(t)
    ours.data[0, 0] = 42
    assert t[0, 0].item() == 42
    back = torch.from_dlpack(ours)
    back[1, 2] = -1
    assert ours.data[1, 2] == -1
    as_numpy = np.asarray(ours)
    assert np.shares_memory(as_numpy, ours.data)
    also = kg.tensor(t)  # torch's __array__: a view of its memory
    assert also.shape == (2, 3)
    assert not hasattr(ours, "__cuda_array_interface__")


def test_loaders_take_datasets_and_report_them():
    x, y = np.arange(10.0).reshape(10, 1), np.arange(10)
    dataset = kg.data.TensorDataset(x, y)
    # torch.utils.data's names, for `import kernelgrad as torch`
    assert kg.utils.data.DataLoader is kg.data.DataLoader
    assert kg.utils.data.TensorDataset is kg.data.TensorDataset
    assert len(dataset) == 10 and dataset[3][1].item() == 3
    loader = kg.data.DataLoader(dataset, batch_size=4, shuffle=True, seed=1)
    assert loader.dataset.arrays[0] is dataset.arrays[0]
    first, second = [np.concatenate([b[1].data for b in loader]) for _ in range(2)]
    assert sorted(first) == list(range(10)) and not np.array_equal(first, second)
    loader.set_epoch(0)
    np.testing.assert_array_equal(np.concatenate([b[1].data for b in loader]), first)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_on_probabilities_matches_torch(rng, reduction):
    p = rng.random((8, 1))
    p[:2] = [[0.0], [1.0]]  # saturated: the logs floored at -100, the gradient's divisor
    t = rng.integers(0, 2, (8, 1)).astype(np.float64)
    t[:2] = 1.0
    ours, theirs = kg.tensor(p, requires_grad=True), torch.tensor(p, requires_grad=True)
    got = nn.BCELoss(reduction=reduction)(ours, kg.tensor(t))
    want = torch.nn.BCELoss(reduction=reduction)(theirs, torch.tensor(t))
    np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=1e-12)
    got.sum().backward()
    want.sum().backward()
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.binary_cross_entropy(kg.tensor(p + 0.5), kg.tensor(t))


def test_a_sigmoid_and_bce_network_trains_and_counts_accuracy_at_one_half(rng):
    x = rng.standard_normal((64, 3))
    y = (x[:, :1] > 0).astype(np.float64)
    kg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 1, dtype=np.float64), nn.Sigmoid())
    model.compile(kg.optim.SGD(model.parameters(), lr=1.0), loss=nn.BCELoss(),
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=20, verbose=0)
    probs = model.predict(x)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # accuracy from probabilities: above one half is class 1 (a logit's threshold is 0)
    expected = np.mean((probs > 0.5) == (y == 1))
    assert history.history["accuracy"][-1] > 0.9
    assert model.evaluate(x, y)[1] == pytest.approx(expected)


def test_one_hot_matches_torch():
    labels = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(
        F.one_hot(kg.tensor(labels)).data,
        torch.nn.functional.one_hot(torch.tensor(labels)).numpy())
    assert F.one_hot(kg.tensor([1]), 5).tolist() == [[0, 1, 0, 0, 0]]
    assert F.one_hot(kg.tensor([1]), 5).dtype == kg.int64
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        F.one_hot(kg.tensor([0, 2]), 2)
    with pytest.raises(TypeError, match="integer"):
        F.one_hot(kg.tensor([0.0, 1.0]))


def test_add_module_retain_graph_and_loader_workers_as_torch_takes_them():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            for i in range(2):
                self.add_module(f"fc{i}", nn.Linear(3, 3, dtype=np.float64))

        def forward(self, x):
            return self.fc1(self.fc0(x))

    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["fc0.weight", "fc0.bias",
                                                      "fc1.weight", "fc1.bias"]
    with pytest.raises(KeyError, match="without dots"):
        net.add_module("a.b", nn.Identity())
    with pytest.raises(TypeError, match="not a Module"):
        net.add_module("c", 3)
    # a second backward over a kept graph adds the same gradients again, as torch's
    a = np.arange(6.0).reshape(2, 3)
    x, tx = kg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = (x * x).sum(), (tx * tx).sum()
    for _ in range(2):
        y.backward(retain_graph=True)
        ty.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())
    with pytest.raises(NotImplementedError, match="create_graph"):
        y.backward(create_graph=True)
    # worker processes and pinned memory have nothing to do for in-memory arrays
    loader = kg.utils.data.DataLoader(kg.data.TensorDataset(a, np.arange(2)), batch_size=1,
                                      shuffle=True, num_workers=4, pin_memory=True)
    assert len(loader) == 2
    with pytest.raises(ValueError, match="num_workers"):
        kg.data.DataLoader(a, num_workers=-1)


def test_ndarrays_meet_tensors_as_torch_tensors_do(rng):
    """ndarray (op) Tensor gives the Tensor's result and gradient, whichever side the
    array is on; `p.data += -lr * p.grad` (gradient descent by hand) updates p."""
    a, b = rng.standard_normal(4), rng.standard_normal(4)
    ours, theirs = kg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    ops = [lambda x, y: y + x, lambda x, y: y - x, lambda x, y: y * x, lambda x, y: y / x,
           lambda x, y: y @ x, lambda x, y: (y * y + 1) ** x]
    for op in ops:
        got, want = op(ours, b), op(theirs, torch.tensor(b))
        assert isinstance(got, kg.Tensor)
        np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=1e-12)
        ours.grad, theirs.grad = None, None
        got.sum().backward()
        want.sum().backward()
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12)
    assert (b < ours).tolist() == (torch.tensor(b) < theirs).tolist()
    assert (b == ours).tolist() == [False] * 4
    p = kg.tensor(a, requires_grad=True)
    (p * p).sum().backward()
    p.data += -0.1 * p.grad
    np.testing.assert_allclose(p.data, a - 0.1 * 2 * a, rtol=1e-12)
    assert p.nelement() == 4
    with pytest.raises(TypeError):
        np.exp(p)  # a ufunc that is not an operator: the Tensor's own method, p.exp()


@pytest.mark.parametrize("options", [{}, {"weight": True}, {"label_smoothing": 0.1},
                                     {"reduction": "sum"}, {"reduction": "none"}])
def test_cross_entropy_with_class_probabilities_matches_torch(rng, options):
    z, t = rng.standard_normal((6, 4)), rng.random((6, 4))
    t /= t.sum(axis=1, keepdims=True)
    w = rng.random(4) + 0.5
    ours_options = {k: (w if k == "weight" else v) for k, v in options.items()}
    torch_options = {k: (torch.tensor(w) if k == "weight" else v) for k, v in options.items()}
    ours, theirs = kg.tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    got = F.cross_entropy(ours, t, **ours_options)
    want = torch.nn.functional.cross_entropy(theirs, torch.tensor(t), **torch_options)
    np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=1e-12)
    got.sum().backward()
    want.sum().backward()
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_keras_categorical_crossentropy_on_one_hot_targets_is_the_sparse_one(rng):
    """Keras's categorical_crossentropy with one-hot targets trains as the sparse loss on
    their labels: the same losses, argmax accuracy, class weights by the row's class."""
    x = rng.standard_normal((60, 5))
    labels = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1)
    one_hot = np.eye(3)[labels]
    runs = []
    for loss, y in (("sparse_categorical_crossentropy", labels),
                    ("categorical_crossentropy", one_hot)):
        kg.manual_seed(2)
        model = nn.Sequential(nn.Linear(5, 8, activation="tanh", dtype=np.float64),
                              nn.Linear(8, 3, dtype=np.float64))
        model.compile(kg.optim.SGD(model.parameters(), lr=0.3), loss, metrics=["accuracy"])
        history = model.fit(x, y, batch_size=20, epochs=4, shuffle=False, verbose=0,
                            class_weight={0: 1.0, 1: 2.0, 2: 0.5})
        runs.append((history.history, model.evaluate(x, y)))
    (sparse, sparse_eval), (dense, dense_eval) = runs
    np.testing.assert_allclose(dense["loss"], sparse["loss"], rtol=1e-10)
    assert dense["accuracy"] == sparse["accuracy"]
    np.testing.assert_allclose(dense_eval, sparse_eval, rtol=1e-10)
