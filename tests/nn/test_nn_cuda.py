"""The nn API on the GPU against the same computation on the CPU (marked `gpu`; skipped
elsewhere): autograd through the CUDA kernels, a model moved with .to("cuda"), training
with fit, and `kernelgrad train --device cuda` against the CPU run."""
import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import cli, devices, nn
from kernelgrad.nn import functional as F

from conftest import assert_close

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not devices.cuda_available(),
                                 reason="needs an NVIDIA GPU with CuPy")]


def graph(x, w, b, labels):
    """A little of everything: linear+ReLU, elementwise ops, indexing, reductions, CE."""
    h = F.linear(x, w, b, "relu")
    h = h * 0.5 + h ** 2 / 4 - (h[:, :3].sum() / 10)
    return F.cross_entropy(h, labels) + h.mean()


def test_autograd_on_the_gpu_matches_the_cpu(rng):
    x = rng.standard_normal((33, 17)).astype(np.float32)
    w = (rng.standard_normal((17, 10)) / 4).astype(np.float32)
    b = rng.standard_normal(10).astype(np.float32)
    labels = rng.integers(0, 10, 33)
    results = {}
    for device in ("cpu", "cuda"):
        leaves = [kg.Tensor(a, requires_grad=True).to(device) for a in (x, w, b)]
        for leaf in leaves:
            leaf.requires_grad = True
        loss = graph(*leaves, kg.Tensor(labels).to(device))
        loss.backward()
        results[device] = [loss.item()] + [devices.to_numpy(t.grad.data) for t in leaves]
    assert abs(results["cpu"][0] - results["cuda"][0]) < 1e-5 * abs(results["cpu"][0]) + 1e-6
    for got, want in zip(results["cuda"][1:], results["cpu"][1:]):
        assert_close(got, want, 1e-5, what="gradient")


def test_model_to_cuda_and_back():
    kg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16, activation="relu"), nn.Linear(16, 3)).to("cuda")
    assert all(p.device == "cuda" for p in model.parameters())
    x = kg.Tensor(np.ones((4, 8), np.float32)).to("cuda")
    assert model(x).device == "cuda"
    model.to("cpu")
    assert all(p.device == "cpu" for p in model.parameters())


def test_out_of_range_label_raises_at_item():
    logits = kg.Tensor(np.zeros((2, 3), np.float32)).to("cuda")
    loss = F.cross_entropy(logits, kg.Tensor(np.array([0, 3])).to("cuda"))
    with pytest.raises(ValueError, match="label outside"):
        loss.item()


def _fit(device):
    kg.manual_seed(0)
    x, y = kg.data.load_digits()
    x_train, x_test, y_train, y_test = kg.data.train_test_split(x, y, test_size=0.2, seed=0)
    model = nn.Sequential(nn.Linear(64, 128, activation="relu"), nn.Dropout(0.2),
                          nn.Linear(128, 10)).to(device)
    loader = kg.data.DataLoader(x_train, y_train, batch_size=64, shuffle=True, seed=0)
    model.compile(kg.optim.Adam(model.parameters()), nn.CrossEntropyLoss(), metrics=["accuracy"])
    model.fit(loader, epochs=5, verbose=0)
    return model.evaluate(x_test, y_test, return_dict=True), model


def test_fit_on_the_gpu_matches_the_cpu(tmp_path):
    cpu, _ = _fit("cpu")
    gpu, model = _fit("cuda")
    # same initial weights and dropout masks; only the rounding of the sums differs
    assert abs(cpu["accuracy"] - gpu["accuracy"]) <= 0.02
    assert abs(cpu["loss"] - gpu["loss"]) <= 0.05 * cpu["loss"]
    kg.save(model, tmp_path / "m.safetensors")
    model.load_state_dict(kg.load(tmp_path / "m.safetensors"))
    assert all(p.device == "cuda" for p in model.parameters())


def test_train_command_on_the_gpu_matches_the_cpu(tmp_path):
    accuracy = {}
    for device in ("cpu", "cuda"):
        args = cli.build_parser().parse_args(
            ["train", "--epochs", "15", "--device", device, "--verbose", "0",
             "--out", str(tmp_path / device)])
        accuracy[device] = cli.train(args)
    assert abs(accuracy["cpu"] - accuracy["cuda"]) <= 0.02, accuracy
