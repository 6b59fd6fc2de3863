"""kg.save / kg.load: safetensors checkpoints of whole training states, written atomically,
read back exactly, and every damaged or foreign file refused with its path named."""
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn
from kernelgrad.nn.serialization import CheckpointError


def test_a_nested_training_state_round_trips_exactly(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, activation="relu"), nn.Linear(4, 2))
    opt = kg.optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad = np.ones(p.shape, np.float32)
    opt.step()
    schedule = kg.optim.StepLR(opt, 2)
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": schedule.state_dict(), "epoch": 3, "rng": kg.get_rng_state(),
             "note": None, "scores": (0.5, float("nan"), [1, np.float32(2.5)]),
             1: "int key", "1": "str key"}
    kg.save(state, tmp_path / "ck.safetensors")
    back = kg.load(tmp_path / "ck.safetensors")
    assert back["epoch"] == 3 and back["note"] is None and back[1] == "int key"
    assert back["1"] == "str key" and back["rng"] == kg.get_rng_state()
    assert np.isnan(back["scores"][1]) and isinstance(back["scores"][2][1], np.float32)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(back["model"][name], value)
    assert back["optimizer"]["param_groups"] == opt.state_dict()["param_groups"]
    for i, entry in opt.state_dict()["state"].items():
        assert back["optimizer"]["state"][i]["step"] == entry["step"]
        np.testing.assert_array_equal(back["optimizer"]["state"][i]["exp_avg"], entry["exp_avg"])
    assert back["scheduler"] == schedule.state_dict()


def test_other_tools_read_the_tensors(tmp_path):
    from safetensors.numpy import load_file
    model = nn.Linear(3, 2)
    kg.save({"model": model.state_dict(), "allow_pickle": np.ones(2), "file": 1}, tmp_path / "m")
    tensors = load_file(tmp_path / "m")
    assert sorted(tensors) == ["allow_pickle", "model.bias", "model.weight"]
    np.testing.assert_array_equal(tensors["model.weight"], model.weight.data)


def test_keys_that_collide_under_str_keep_both_values(tmp_path):
    kg.save({1: np.zeros(2), "1": np.ones(2), None: np.full(2, 2.0), "None": 3},
            tmp_path / "c")
    back = kg.load(tmp_path / "c")
    assert back[1].sum() == 0 and back["1"].sum() == 2 and back[None].sum() == 4
    assert back["None"] == 3


def test_saving_is_atomic_respects_the_umask_and_follows_symlinks(tmp_path):
    target = tmp_path / "real.safetensors"
    link = tmp_path / "link.safetensors"
    kg.save({"x": np.zeros(3)}, target)
    link.symlink_to(target)
    old = os.umask(0o027)
    try:
        kg.save({"x": np.ones(3)}, link)
    finally:
        os.umask(old)
    assert link.is_symlink() and kg.load(link)["x"].sum() == 3
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["link.safetensors", "real.safetensors"]


def test_a_failed_save_leaves_nothing_and_names_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="a set"):
        kg.save({"x": {1, 2}}, tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "no" / "dir")):
        kg.save({"x": np.zeros(2)}, tmp_path / "no" / "dir")
    assert os.listdir(tmp_path) == []


def test_a_save_killed_midway_leaves_a_file_the_next_save_removes(tmp_path):
    target = tmp_path / "ck"
    script = ("import os, signal, numpy as np, kernelgrad.nn.serialization as s\n"
              "real = s._write_atomic\n"
              "def write(path, data):\n"
              "    os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
              "    real(path, data)\n"
              "s._write_atomic = write\n"
              f"s.save({{'x': np.zeros(3)}}, {str(target)!r})\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert done.returncode == -9
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(leftovers) == 1 and not target.exists()
    kg.save({"x": np.ones(3)}, target)
    assert os.listdir(tmp_path) == ["ck"]


@pytest.mark.parametrize("content, match", [
    (b"", "not a checkpoint"),
    (b"hello, this is a text file", "not a checkpoint"),
    ((2 ** 40).to_bytes(8, "little") + b"{}", "not a checkpoint"),
    (len(b'{"x":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4]}}').to_bytes(
        8, "little") + b'{"x":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4]}}'
     + b"\0" * 4, "does not fit"),
])
def test_damaged_files_are_refused_before_anything_is_allocated(tmp_path, content, match):
    path = tmp_path / "damaged"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as error:
        kg.load(path)
    assert str(path) in str(error.value)


def test_npy_files_and_bad_archives_are_refused_by_name(tmp_path):
    np.save(tmp_path / "a.npy", np.ones(3))
    with pytest.raises(CheckpointError, match="a.npy is not a checkpoint"):
        kg.load(tmp_path / "a.npy")
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04" + b"\0" * 30)
    with pytest.raises(CheckpointError, match="cut.npz is not a checkpoint"):
        kg.load(tmp_path / "cut.npz")


def test_an_npz_header_claiming_2_to_the_40_elements_is_refused(tmp_path):
    import io
    import zipfile
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (1 << 40,)})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("x.npy", member.getvalue() + b"\0" * 16)
    with pytest.raises(CheckpointError, match="claims"):
        kg.load(tmp_path / "huge.npz")


def test_checkpoints_of_earlier_versions_load(tmp_path):
    model = nn.Linear(3, 2)
    np.savez(tmp_path / "old.npz", **model.state_dict())
    back = kg.load(tmp_path / "old.npz")
    assert list(back) == ["weight", "bias"]
    model.load_state_dict(back)


def test_metadata_is_json_that_other_readers_parse(tmp_path):
    kg.save({"epoch": 7, "x": np.zeros(1)}, tmp_path / "m")
    raw = (tmp_path / "m").read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert header["__metadata__"]["format"].startswith("kernelgrad")
    json.loads(header["__metadata__"]["structure"])
