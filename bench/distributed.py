"""Data-parallel training over MPI on this machine: the all-reduce and the wide MLP step.

    python -m bench.distributed [--ranks 2]

Launches itself under mpiexec (from the mpich wheel) and prints two tables:

1. all-reduce throughput of kernelgrad.distributed.all_reduce against a raw mpi4py
   Allreduce on the same float32 buffers, 1 KB to 64 MB (goal: >= 0.95x);
2. the wide MLP (784-1024-1024-10, dropout 0.2, Adam, batch 512 per rank, one thread per
   rank) on 1 and on N ranks: samples per second, the scaling efficiency
   (N-rank samples/s over N x 1-rank samples/s), and how much of the communication the
   overlap with backward hides: the time backward waits at its end for the all-reduces
   when buckets start during backward, against when one bucket starts after it.

Writes bench/results/<machine>-<date>/distributed.json. On a machine with fewer cores
than ranks x threads, the ranks share cores and the efficiency says so.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

SIZES = [1 << 10, 1 << 14, 1 << 17, 1 << 20, 1 << 23, 1 << 26]  # bytes
WIDE = (784, 1024, 1024, 10)


def _timed(fn, comm):
    """The slowest rank's time for one call (every rank starts together)."""
    from mpi4py import MPI
    comm.Barrier()
    start = time.perf_counter()
    fn()
    return comm.allreduce(time.perf_counter() - start, op=MPI.MAX)


def _best_of(fn, repeats, comm):
    """The median over repeats of the slowest rank's time, after a warm-up call."""
    fn()
    return float(np.median([_timed(fn, comm) for _ in range(repeats)]))


def _interleaved(fns, repeats, comm):
    """Each function's median time, the functions taking turns (so drift hits them alike),
    after a warm-up call of each (first touches of the buffer are not timed)."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for t, fn in zip(times, fns):
            t.append(_timed(fn, comm))
    return [float(np.median(t)) for t in times]


def worker_allreduce():
    from mpi4py import MPI

    from kernelgrad import distributed as dist
    dist.init()
    comm = MPI.COMM_WORLD
    rows = []
    for size in SIZES:
        buffer = np.ones(size // 4, np.float32)
        repeats = max(9, min(400, (1 << 25) // size))
        ours, raw = _interleaved(
            [lambda: dist.all_reduce(buffer),
             lambda: comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)], repeats, comm)
        rows.append({"bytes": size, "ours_s": ours, "mpi4py_s": raw})
    return rows


def worker_train(steps=20):
    from mpi4py import MPI

    import kernelgrad as kg
    from kernelgrad import distributed as dist
    from kernelgrad import nn
    from kernelgrad.cli import build_mlp
    dist.init()
    comm = MPI.COMM_WORLD
    rng = np.random.default_rng(dist.rank())
    x = kg.tensor(rng.standard_normal((512, WIDE[0]), dtype=np.float32))
    y = kg.tensor(rng.integers(0, WIDE[-1], 512))
    out = {}
    for label, bucket_mb in (("overlapped", 4.0), ("after backward", 1e6)):
        kg.manual_seed(0)
        model = build_mlp(WIDE[0], WIDE[1:-1], WIDE[-1], "relu", 0.2)
        replica = dist.DataParallel(model, bucket_mb=bucket_mb)
        opt = kg.optim.Adam(model.parameters())
        loss_fn = nn.CrossEntropyLoss()

        waits = []

        def step():
            opt.zero_grad()
            loss_fn(replica(x), y).backward()
            waits.append(replica.last_wait_s)
            opt.step()
        step()
        out[label] = _best_of(step, steps, comm)
        out[label + " wait"] = float(np.median(waits))
    grads = np.ones(sum(p.data.size for p in model.parameters()), np.float32)
    out["all-reduce alone"] = _best_of(lambda: dist.all_reduce(grads), steps, comm)
    out["gradient_bytes"] = grads.nbytes
    return out


def _mpiexec():
    found = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or \
        shutil.which("mpiexec")
    if found is None:
        sys.exit("bench.distributed needs mpiexec: pip install -e '.[distributed]'")
    return found


def launch(task, ranks):
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", KERNELGRAD_IMPL="numba")
    done = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, "-m",
                           "bench.distributed", "--worker", task], env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode:
        sys.exit(f"{task} on {ranks} ranks failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _size(n):
    return f"{n >> 20} MB" if n >= 1 << 20 else f"{n >> 10} KB"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.distributed",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", choices=["allreduce", "train"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker_allreduce() if args.worker == "allreduce" else worker_train()
        from mpi4py import MPI
        if MPI.COMM_WORLD.Get_rank() == 0:
            print(json.dumps(result))
        return 0
    from . import machine
    from .runner import results_path
    lines = [f"{args.ranks} ranks on {os.cpu_count()} cores ({machine.cpu_model()}), one "
             "thread each, MPICH over shared memory"]
    reduce_rows = launch("allreduce", args.ranks)
    lines.append(f"{'all-reduce':<12}{'ours us':>10}{'mpi4py us':>11}{'ratio':>8}{'GB/s':>8}")
    for r in reduce_rows:
        ratio = r["mpi4py_s"] / r["ours_s"]
        lines.append(f"{_size(r['bytes']):<12}{r['ours_s'] * 1e6:10.1f}"
                     f"{r['mpi4py_s'] * 1e6:11.1f}{ratio:7.2f}x"
                     f"{r['bytes'] / r['ours_s'] / 1e9:8.2f}")
    one, many = launch("train", 1), launch("train", args.ranks)
    rate_1 = 512 / one["overlapped"]
    rate_n = 512 * args.ranks / many["overlapped"]
    hidden = 1 - many["overlapped wait"] / many["after backward wait"]
    lines += [f"wide MLP step, batch 512 per rank ({many['gradient_bytes'] / 1e6:.1f} MB of "
              "gradients):",
              f"  1 rank: {one['overlapped'] * 1e3:.1f} ms ({rate_1:.0f} samples/s)",
              f"  {args.ranks} ranks: {many['overlapped'] * 1e3:.1f} ms ({rate_n:.0f} "
              f"samples/s): scaling efficiency {rate_n / (args.ranks * rate_1):.0%}",
              f"  all-reduce of the gradients alone {many['all-reduce alone'] * 1e3:.1f} ms; "
              f"backward waits {many['after backward wait'] * 1e3:.2f} ms for it sent after "
              f"backward ({many['after backward'] * 1e3:.1f} ms per step), "
              f"{many['overlapped wait'] * 1e3:.2f} ms with buckets started during backward: "
              f"the overlap hides {hidden:.0%} of it"]
    print("\n".join(lines))
    out = args.out or results_path(machine.machine_name(), "distributed")
    with open(out, "w") as f:
        json.dump({"allreduce": reduce_rows, "train_1": one, f"train_{args.ranks}": many,
                   "table": lines}, f, indent=1)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
