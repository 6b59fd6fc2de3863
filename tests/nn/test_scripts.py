"""A PyTorch user's training script and a Keras user's, each run with kernelgrad after
changing only its imports, reach PyTorch's accuracy on the digits.

The PyTorch script is run twice, word for word: once under PyTorch's imports (the oracle)
and once under kernelgrad's.
"""
import numpy as np
import pytest

import kernelgrad as kg

torch = pytest.importorskip("torch")

TORCH_IMPORTS = """
import torch
from torch import nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
"""
KERNELGRAD_IMPORTS = """
import kernelgrad as torch
from kernelgrad import nn
import kernelgrad.nn.functional as F
from kernelgrad.utils.data import DataLoader, TensorDataset
"""

# As a PyTorch user writes it (the digits arrive as NumPy arrays: x_train, y_train, ...).
PYTORCH_SCRIPT = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 128)
        self.fc3 = nn.Linear(128, 10)
        self.dropout = nn.Dropout(0.2)

    def forward(self, x):
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        return self.fc3(x)


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        correct = (logits.argmax(dim=1) == y).sum().item()
    return loss, correct / y.size(0)


torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
train_set = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
loader = DataLoader(train_set, batch_size=64, shuffle=True)
x_val, y_val = torch.from_numpy(x_test).to(device), torch.from_numpy(y_test).to(device)
model = Net().to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=15, gamma=0.5)
for epoch in range(30):
    model.train()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
        optimizer.step()
    scheduler.step()
    val_loss, accuracy = evaluate(model, x_val, y_val)
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "epoch": epoch}, checkpoint)
restored = Net()
restored.load_state_dict(torch.load(checkpoint)["model"])
assert evaluate(restored, x_val, y_val) == evaluate(model, x_val, y_val)
"""

# As a Keras user writes it, with kernelgrad's layers: Linear takes (in, out) where
# Keras's Dense infers the input width; the rest is Keras's Model API.
KERAS_SCRIPT = """
import kernelgrad as kg
from kernelgrad import nn

kg.manual_seed(0)
model = nn.Sequential(
    nn.Linear(64, 128, activation="relu"),
    nn.Dropout(0.2),
    nn.Linear(128, 128, activation="relu"),
    nn.Dropout(0.2),
    nn.Linear(128, 10),
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.summary(print_fn=lambda text: None)
callbacks = [
    nn.EarlyStopping(monitor="val_loss", patience=8, restore_best_weights=True, verbose=0),
    nn.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
    nn.CSVLogger(log_file),
    nn.TerminateOnNaN(),
]
history = model.fit(x_train, y_train, batch_size=64, epochs=60, validation_split=0.1,
                    shuffle=True, callbacks=callbacks, verbose=0)
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
predictions = model.predict(x_test).argmax(axis=1)
assert (predictions == y_test).mean() == accuracy
best = nn.Sequential(nn.Linear(64, 128, activation="relu"), nn.Dropout(0.2),
                     nn.Linear(128, 128, activation="relu"), nn.Dropout(0.2), nn.Linear(128, 10))
best.load_state_dict(kg.load(checkpoint))
best.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
assert best.evaluate(x_test, y_test) == [loss, accuracy]  # the checkpoint is the best epoch
"""


@pytest.fixture(scope="module")
def digits():
    x, y = kg.data.load_digits()
    return kg.data.train_test_split(x, y, test_size=0.2, seed=0)


def run(script, digits, tmp_path):
    x_train, x_test, y_train, y_test = digits
    namespace = dict(x_train=x_train, x_test=x_test, y_train=y_train, y_test=y_test,
                     checkpoint=str(tmp_path / "checkpoint"), log_file=str(tmp_path / "log.csv"))
    exec(compile(script, "script", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def torch_accuracy(digits, tmp_path_factory):
    torch.set_num_threads(2)
    return run(TORCH_IMPORTS + PYTORCH_SCRIPT, digits, tmp_path_factory.mktemp("torch"))[
        "accuracy"]


def test_a_pytorch_script_runs_with_changed_imports(digits, tmp_path, torch_accuracy):
    ours = run(KERNELGRAD_IMPORTS + PYTORCH_SCRIPT, digits, tmp_path)
    assert ours["accuracy"] >= 0.95 and abs(ours["accuracy"] - torch_accuracy) <= 0.02, \
        (ours["accuracy"], torch_accuracy)


def test_a_keras_script_runs(digits, tmp_path, torch_accuracy):
    ours = run(KERAS_SCRIPT, digits, tmp_path)
    assert ours["accuracy"] >= 0.95 and abs(ours["accuracy"] - torch_accuracy) <= 0.02, \
        (ours["accuracy"], torch_accuracy)
    epochs = len(ours["history"].epoch)
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,accuracy,val_loss,val_accuracy" and len(lines) == epochs + 1
    assert np.argmin(ours["history"]["val_loss"]) == ours["callbacks"][0].best_epoch
