"""Data-parallel training over MPI: 2 ranks on this machine (mpiexec from the mpich wheel),
each test a job of its own (tests/distributed/workers.py is what the ranks run)."""
import ctypes
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from kernelgrad import distributed as dist

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")

pytestmark = pytest.mark.skipif(MPIEXEC is None,
                                reason="needs mpiexec (pip install 'kernelgrad[distributed]')")


def launch(*args, ranks=2, timeout=120, command=None):
    """Run workers.py TASK ... (or `command`) on `ranks` processes; the finished process."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]),
               NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    command = command or [sys.executable, str(HERE / "workers.py"), *map(str, args)]
    return subprocess.run([MPIEXEC, "-n", str(ranks), *command], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def single(*args):
    """The same worker as one process (no launcher)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]))
    done = subprocess.run([sys.executable, str(HERE / "workers.py"), *map(str, args)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def ok(done):
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def params(path):
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


def test_collectives(tmp_path):
    ok(launch("collectives", tmp_path / "c.json"))
    got = json.loads((tmp_path / "c.json").read_text())
    assert got == {"total": [3.0] * 3, "mean": [1.0] * 2, "root": [0.0, 2.0, 4.0, 6.0],
                   "floats": [0.1 + 0.2, 1.0], "world": 2}


def test_one_process_is_a_world_of_one():
    assert dist.world_size() == 1 and dist.rank() == 0 and not dist.is_initialized()
    x = np.arange(3.0)
    assert dist.all_reduce(x, op="mean") is x and x.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="op must be"):
        dist.all_reduce(x, op="max")
    with pytest.raises(ValueError, match="root 1 is not a rank"):
        dist.broadcast(x, root=1)
    with pytest.raises(TypeError, match="contiguous"):
        dist.all_reduce(np.arange(6.0)[::2])


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 2e-5)])
def test_two_ranks_give_what_one_process_gives_with_twice_the_batch(tmp_path, dtype, rtol):
    ok(launch("train", tmp_path / "two.npz", dtype, 8))
    single("train", tmp_path / "one.npz", dtype, 16)
    two, one = params(tmp_path / "two.npz"), params(tmp_path / "one.npz")
    for a, b in zip(two, one):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


def test_dropout_runs_repeat_and_ranks_draw_different_masks(tmp_path):
    ok(launch("train", tmp_path / "a.npz", "float64", 8, 0.3, 5))
    ok(launch("train", tmp_path / "b.npz", "float64", 8, 0.3, 5))
    for a, b in zip(params(tmp_path / "a.npz"), params(tmp_path / "b.npz")):
        assert a.tobytes() == b.tobytes()
    from kernelgrad.nn import random
    random.set_stream_rank(1)
    try:
        key_1 = random.dropout_stream()[0]
    finally:
        random.set_stream_rank(0)
    assert key_1 != random.dropout_stream()[0]


def test_all_reduces_start_before_backward_ends_and_no_sync_sends_nothing(tmp_path):
    ok(launch("order", tmp_path / "order.json"))
    seen = json.loads((tmp_path / "order.json").read_text())
    events, buckets = seen["synced"], seen["buckets"]
    assert len(buckets) > 1  # bucket_mb=0.002: several buckets
    first_reduce = next(i for i, e in enumerate(events) if e.startswith("allreduce"))
    last_grad = max(i for i, e in enumerate(events) if e.startswith("grad"))
    assert first_reduce < last_grad  # overlapped with the rest of backward
    assert sum(e.startswith("allreduce") for e in events) == len(buckets)
    assert buckets[0][0] == "2.bias"  # the last layer's gradients come first
    assert seen["no_sync"] == [] and seen["accumulated"]


def test_a_failing_rank_ends_the_job_with_its_message(tmp_path):
    start = time.monotonic()
    done = launch("fail", tmp_path / "x", timeout=60)
    assert time.monotonic() - start < 30
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "rank 1 ran out of luck at batch 3" in output and "rank 1 of 2 failed" in output


def test_different_models_are_refused_naming_the_parameter(tmp_path):
    done = launch("mismatch", tmp_path / "x", timeout=60)
    assert done.returncode != 0
    assert "parameter '0.weight' is (12, 3" in done.stdout + done.stderr


def test_fit_under_mpiexec_is_data_parallel_and_rank_0_alone_prints(tmp_path):
    done = ok(launch("fit", tmp_path / "two.json"))
    assert done.stdout.count("epoch 3/3") == 1
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["world"] == 2
    single("fit", tmp_path / "one.json", 16)  # one process with the global batch
    one = json.loads((tmp_path / "one.json").read_text())
    np.testing.assert_allclose(two["history"]["loss"], one["history"]["loss"], rtol=1e-10)
    for a, b in zip(two["params"], one["params"]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_kernelgrad_train_under_mpiexec(tmp_path):
    cli = shutil.which("kernelgrad", path=os.path.dirname(sys.executable))
    done = ok(launch(command=[cli, "train", "--epochs", "2", "--out", str(tmp_path / "run")]))
    assert done.stdout.count("data-parallel over 2 processes (mpi)") == 1
    assert done.stdout.count("epoch 2/2") == 1 and done.stdout.count("wrote ") == 1
    assert (tmp_path / "run" / "model.safetensors").exists()


class FakeHost:
    """Rank 0 of two, over no network: the host side of the NCCL backend."""
    rank, size = 0, 2

    def broadcast_object(self, value, root=0):
        return value

    def gather_objects(self, value):
        return [value, value]

    def sum_floats(self, values):
        return [2.0 * v for v in values]

    def barrier(self):
        pass


class FakeNccl:
    """NCCL's communicator calls on host memory: the peer holds the same gradients, so an
    all-reduce doubles the buffer."""

    def __init__(self):
        self.calls = []

    def allReduce(self, send, recv, count, dtype, op, stream):
        self.calls.append(("allReduce", count, dtype, op, stream, send == recv))
        kind = {7: ctypes.c_float, 8: ctypes.c_double}[dtype]
        buffer = np.ctypeslib.as_array((kind * count).from_address(recv))
        buffer *= 2

    def bcast(self, buffer, count, dtype, root, stream):
        self.calls.append(("bcast", count, dtype, root, stream))


def test_the_nccl_path_with_a_fake_communicator(monkeypatch):
    """NOT RUN ON A GPU: DataParallel's NCCL path (pointers, NCCL's type codes, one
    all-reduce per bucket, in place, then the average) on host memory."""
    import kernelgrad as kg
    from kernelgrad import nn
    comm = FakeNccl()
    world = dist._backends.NCCLBackend(FakeHost(), communicator=comm, stream=None)
    monkeypatch.setattr(dist, "_world", world)
    kg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5, activation="relu"), nn.Linear(5, 3))
    replica = dist.DataParallel(model, bucket_mb=1e-4)  # 100 bytes: several buckets
    x, y = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32), np.arange(4) % 3
    nn.CrossEntropyLoss()(model(kg.tensor(x)), kg.tensor(y)).backward()
    local = [p.grad.data.copy() for p in model.parameters()]
    model.zero_grad()
    nn.CrossEntropyLoss()(replica(kg.tensor(x)), kg.tensor(y)).backward()
    for p, g in zip(model.parameters(), local):
        np.testing.assert_array_equal(p.grad.data, g)  # (g + g) / 2
    reduces = [c for c in comm.calls if c[0] == "allReduce"]
    sizes = [sum(dict(model.named_parameters())[n].data.size for n in names)
             for names in replica.bucket_names]
    assert sorted(c[1] for c in reduces) == sorted(sizes) and len(sizes) > 1
    assert all(c[2] == 7 and c[3] == 0 and c[5] for c in reduces)  # float32, sum, in place
    assert sum(c[0] == "bcast" for c in comm.calls) == len(list(model.parameters()))
