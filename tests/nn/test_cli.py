"""`kernelgrad train`: its outputs, its accuracy, and a one-line error (exit status 2, no
traceback, nothing trained) for every user mistake."""
import gzip

import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad.cli import main as cli_main


def test_kernelgrad_train_writes_checkpoint_and_curves(tmp_path, capsys):
    cli_main(["train", "--epochs", "3", "--hidden", "32", "--out", str(tmp_path),
              "--verbose", "0", "--optimizer", "sgd", "--lr", "0.1", "--activation", "tanh"])
    out = capsys.readouterr().out
    assert "test accuracy" in out
    assert (tmp_path / "curves.png").stat().st_size > 1000
    state = kg.load(tmp_path / "model.safetensors")
    assert [a.shape for a in state.values()] == [(64, 32), (32,), (32, 10), (10,)]


def test_kernelgrad_train_default_run_reaches_high_accuracy(tmp_path, capsys):
    """The default command (seed 0, whose split is the hardest of seeds 0-9; docs/results.md)."""
    from kernelgrad.cli import build_parser, train
    accuracy = train(build_parser().parse_args(["train", "--out", str(tmp_path), "--verbose", "0"]))
    assert accuracy >= 0.95


def test_kernelgrad_train_rejects_cuda_and_a_missing_mnist_dir(tmp_path, capsys):
    for flags, message in ((["--device", "cuda"], "device 'cuda' is not usable"),
                           (["--dataset", "mnist"], "--data-dir")):
        with pytest.raises(SystemExit) as exit:
            cli_main(["train", *flags, "--out", str(tmp_path)])
        assert exit.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "train at least one epoch"),
    (["--epochs", "-1"], "train at least one epoch"),
    (["--lr", "nan"], "must be finite"),
    (["--lr", "0"], "must be > 0"),
    (["--batch-size", "0"], "batch size is a positive integer"),
    (["--dropout", "1"], "must be < 1"),
    (["--seed", "-1"], "seed is a non-negative integer"),
    (["--hidden", "0"], "layer width is a positive integer"),
    (["--data-dir", "/tmp"], "--data-dir is for --dataset mnist"),
])
def test_bad_flags_end_in_one_line_before_any_data_is_read(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit:
        cli_main(["train", "--out", str(tmp_path / "run"), *flags])
    err = capsys.readouterr()
    assert exit.value.code == 2 and message in err.err
    assert "Traceback" not in err.err and "epoch" not in err.out


def test_an_unusable_out_fails_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file" / "under"):
        with pytest.raises(SystemExit) as exit:
            cli_main(["train", "--out", str(out)])
        captured = capsys.readouterr()
        assert exit.value.code == 2 and "--out" in captured.err
        assert "epoch" not in captured.out


def test_a_run_whose_validation_loss_never_improves_finishes(tmp_path, capsys):
    """A learning rate that makes every loss NaN: best_epoch stays None, which crashed the
    report after training."""
    cli_main(["train", "--epochs", "3", "--patience", "1", "--optimizer", "sgd", "--lr", "1e30",
              "--out", str(tmp_path), "--verbose", "0"])
    out = capsys.readouterr().out
    assert "val_loss never improved" in out and (tmp_path / "model.safetensors").exists()


def test_a_dataset_too_small_for_its_splits_is_refused_with_counts(tmp_path, capsys):
    def write(path, array, code):
        header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
        with gzip.open(path, "wb") as f:
            f.write(header + array.tobytes())
    for split, n in (("train", 12), ("t10k", 4)):
        write(tmp_path / f"{split}-images-idx3-ubyte.gz", np.zeros((n, 2, 2), np.uint8), 0x08)
        write(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 10,
              0x08)
    with pytest.raises(SystemExit):
        cli_main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path),
                  "--out", str(tmp_path / "run")])
    assert "12 examples are too few for a validation split" in capsys.readouterr().err


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps at the terminal width
    for default in ("(default: digits)", "(default: [128, 128])", "(default: 0.001)",
                    "(default: 64)", "(default: 0.2)", "(default: 100)", "(default: 10)"):
        assert default in out
