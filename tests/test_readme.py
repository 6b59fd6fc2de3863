"""The README's layer-API example runs as printed."""
import os
import re

import numpy as np

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def test_readme_layer_api_example_runs(tmp_path, monkeypatch, capsys):
    text = open(README, encoding="utf-8").read()
    section = text[text.index("## The layer API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.split("\n")
    assert printed[0] == "0.0024726" or abs(float(printed[0]) - 0.0024726) < 1e-6
    assert printed[1] == "Tensor(6.)"
    assert "'accuracy'" in printed[-2]
    assert (tmp_path / "digits.safetensors").exists()
    assert namespace["history"]["val_loss"]
    assert np.isfinite(namespace["history"]["loss"]).all()
