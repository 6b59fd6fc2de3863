"""The README's two examples run as printed and print what they say they compute."""
import os
import re

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def _example(heading):
    text = open(README, encoding="utf-8").read()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _run(code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return capsys.readouterr().out.strip().split("\n"), namespace


def test_readme_kernel_example_runs(tmp_path, monkeypatch, capsys):
    printed, _ = _run(_example("## A kernel"), tmp_path, monkeypatch, capsys)
    loss, error = re.fullmatch(r"mean loss ([\d.]+), max error ([\d.e+-]+)", printed[0]).groups()
    assert 0 < float(loss) < 10 and float(error) < 1e-4
    kept = float(re.fullmatch(r"kept ([\d.]+) of the inputs", printed[1]).group(1))
    assert abs(kept - 0.8) < 0.01


def test_readme_network_example_runs(tmp_path, monkeypatch, capsys):
    printed, namespace = _run(_example("## A network"), tmp_path, monkeypatch, capsys)
    accuracy = float(re.search(r"'accuracy': ([\d.]+)", printed[-1]).group(1))
    assert accuracy > 0.9
    assert (tmp_path / "digits.safetensors").exists()
    assert namespace["history"]["val_loss"]
