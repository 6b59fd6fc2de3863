"""Resumable training: 10 epochs straight, and 5 epochs, a checkpoint (model, optimizer,
schedule, epoch, the library's random state), a fresh process that loads it and trains 5
more, end with the same parameters bit for bit (dropout and shuffling included)."""
import os
import subprocess
import sys

import numpy as np

import kernelgrad as kg

SETUP = """
import numpy as np, kernelgrad as kg
from kernelgrad import nn
x, y = kg.data.load_digits()
x, y = x[:600], y[:600]
kg.manual_seed(7)
model = nn.Sequential(nn.Linear(64, 64, activation="relu"), nn.Dropout(0.3),
                      nn.Linear(64, 10))
optimizer = kg.optim.Adam(model.parameters(), lr=3e-3)
schedule = kg.optim.StepLR(optimizer, step_size=3, gamma=0.5)
model.compile(optimizer, nn.CrossEntropyLoss(), metrics=["accuracy"])
"""
STRAIGHT = SETUP + """
model.fit(x, y, batch_size=32, epochs=10, callbacks=[schedule], verbose=0)
kg.save(model, {out!r})
"""
FIRST_HALF = SETUP + """
model.fit(x, y, batch_size=32, epochs=5, callbacks=[schedule], verbose=0)
kg.save({{"model": model.state_dict(), "optimizer": optimizer.state_dict(),
         "schedule": schedule.state_dict(), "epoch": 5, "rng": kg.get_rng_state()}}, {out!r})
"""
SECOND_HALF = SETUP + """
state = kg.load({checkpoint!r})
model.load_state_dict(state["model"])
optimizer.load_state_dict(state["optimizer"])
schedule.load_state_dict(state["schedule"])
kg.set_rng_state(state["rng"])
model.fit(x, y, batch_size=32, epochs=10, initial_epoch=state["epoch"], callbacks=[schedule],
          verbose=0)
kg.save(model, {out!r})
"""


def python(script):
    subprocess.run([sys.executable, "-c", script], check=True, env=dict(os.environ))


def test_training_resumed_in_a_fresh_process_equals_training_straight(tmp_path):
    python(STRAIGHT.format(out=str(tmp_path / "straight")))
    python(FIRST_HALF.format(out=str(tmp_path / "half")))
    python(SECOND_HALF.format(checkpoint=str(tmp_path / "half"), out=str(tmp_path / "resumed")))
    straight, resumed = kg.load(tmp_path / "straight"), kg.load(tmp_path / "resumed")
    assert list(straight) == list(resumed)
    for name in straight:
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)
    half = kg.load(tmp_path / "half")
    assert not np.array_equal(half["model"]["0.weight"], straight["0.weight"])  # it trained on
