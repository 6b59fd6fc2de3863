"""What each rank runs in the distributed tests: python workers.py TASK OUT [args].

Launched by tests/distributed/test_distributed.py under `mpiexec -n 2`; rank 0 writes
what the test checks into OUT (an .npz or .json file).
"""
import json
import sys

import numpy as np

import kernelgrad as kg
from kernelgrad import distributed as dist
from kernelgrad import nn

N, WIDTHS = 96, (12, 32, 16, 5)


def data(dtype):
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, WIDTHS[0])).astype(dtype), rng.integers(0, WIDTHS[-1], N)


def mlp(dtype, dropout=0.0, hidden=WIDTHS[1]):
    kg.manual_seed(1 + dist.rank())  # different on each rank: DataParallel must broadcast
    layers = [nn.Linear(WIDTHS[0], hidden, activation="relu", dtype=dtype)]
    layers += [nn.Dropout(dropout)] if dropout else []
    layers += [nn.Linear(hidden, WIDTHS[2], activation="tanh", dtype=dtype),
               nn.Linear(WIDTHS[2], WIDTHS[3], dtype=dtype)]
    return nn.Sequential(*layers)


def train(out, dtype_name, batch, dropout="0", steps="20"):
    """`steps` Adam steps of batch `batch` per rank over the data in order; rank 0 saves
    the parameters (and each rank's first dropout mask sum, to show they differ)."""
    dtype = np.dtype(dtype_name).type
    if dist.launched_size() > 1:
        dist.init()
    model = mlp(dtype, float(dropout))
    replica = dist.DataParallel(model) if dist.world_size() > 1 else model
    opt = kg.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    x, y = data(dtype)
    loader = dist.shard_loader(kg.data.DataLoader(x, y, batch_size=int(batch)))
    kg.manual_seed(5)  # the dropout stream: the same seed on every rank
    done = 0
    while done < int(steps):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(replica(xb), yb).backward()
            opt.step()
            done += 1
            if done == int(steps):
                break
    if dist.rank() == 0:
        np.savez(out, *[p.data for p in model.parameters()])


def order(out):
    """The order of gradient and all-reduce events in one backward with small buckets, and
    the all-reduces made under no_sync."""
    dist.init()
    model = mlp(np.float64)
    replica = dist.DataParallel(model, bucket_mb=0.002)
    events = []
    world = dist._world
    start = world.iallreduce

    def logged(array):
        events.append(f"allreduce {array.size}")
        return start(array)
    world.iallreduce = logged
    for name, p in model.named_parameters():
        p.register_post_accumulate_grad_hook(lambda _p, name=name: events.append(f"grad {name}"))
    x, y = data(np.float64)
    nn.CrossEntropyLoss()(replica(kg.tensor(x[:8])), kg.tensor(y[:8])).backward()
    synced = list(events)
    events.clear()
    before = [p.grad.data.copy() for p in model.parameters()]
    with replica.no_sync():  # the same batch on both ranks: its average is its local grad
        nn.CrossEntropyLoss()(replica(kg.tensor(x[:8])), kg.tensor(y[:8])).backward()
    after = [p.grad.data.copy() for p in model.parameters()]
    if dist.rank() == 0:
        json.dump({"synced": synced, "no_sync": [e for e in events if "allreduce" in e],
                   "buckets": replica.bucket_names,
                   "accumulated": all(np.allclose(a, 2 * b, rtol=1e-12)
                                      for a, b in zip(after, before))}, open(out, "w"))


def collectives(out):
    """all_reduce (sum, mean; arrays and Tensors), broadcast and barrier on 2 ranks."""
    dist.init()
    r = dist.rank()
    total = dist.all_reduce(np.full(3, r + 1.0))
    mean = dist.all_reduce(kg.tensor(np.full(2, 2.0 * r, np.float32)), op="mean")
    root = dist.broadcast(np.arange(4.0) * (r + 1), root=1)
    dist.barrier()
    floats = dist.sum_floats([0.1 * (r + 1), r])
    if r == 0:
        json.dump({"total": total.tolist(), "mean": mean.data.tolist(), "root": root.tolist(),
                   "floats": floats, "world": dist.world_size()}, open(out, "w"))


def fail(out, where="fit"):
    """Rank 1 raises in the middle of fit; rank 0 would wait in a collective for it."""
    model = mlp(np.float32)
    model.compile(kg.optim.Adam(model.parameters()), nn.CrossEntropyLoss())

    class Boom(nn.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if dist.rank() == 1 and batch == 3:
                raise RuntimeError("rank 1 ran out of luck at batch 3")
    x, y = data(np.float32)
    model.fit(x, y, batch_size=8, epochs=50, verbose=0, callbacks=[Boom()])


def mismatch(out):
    dist.init()
    dist.DataParallel(mlp(np.float32, hidden=32 if dist.rank() == 0 else 33))


def fit(out, batch="8"):
    """model.fit as a single-process script writes it; rank 0 saves the history."""
    model = mlp(np.float64)
    model.compile(kg.optim.Adam(model.parameters(), lr=1e-2), nn.CrossEntropyLoss(),
                  metrics=["accuracy"])
    x, y = data(np.float64)
    history = model.fit(x, y, batch_size=int(batch), epochs=3, verbose=1, shuffle=False)
    if dist.rank() == 0:
        json.dump({"history": history.history, "world": dist.world_size(),
                   "params": [p.data.tolist() for p in model.parameters()]}, open(out, "w"))


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
