"""Steady beside a busy core: kernelgrad and PyTorch, idle and with one core taken.

    python -m bench.contention [--repeats 5] [--out FILE]

Writes bench/results/<machine>-<date>/contention.json (never over an existing file).

A machine shared with other work (a laptop with a browser open, a CI runner, a shared
server) has cores that another process holds. A parallel kernel ends when its slowest
thread does, and the thread placed on a taken core runs only now and then. This bench
times three workloads with each library's default thread count and with one thread,
first on the idle machine and then with a busy loop pinned to the last core (started
for that half of the run, and stopped whatever happens):

- the demo MLP epoch: 5,400 samples, 784-128-128-10 ReLU, dropout 0.2, Adam, batch 64,
  through model.fit (kernelgrad) and the usual loop (PyTorch);
- the wide MLP training step: batch 512, 784-1024-1024-10 (bench/steps.py);
- a 1024^3 float32 GEMM.

The goal it checks: loaded, the default settings take at most 1.3x the time of one
thread; idle, they keep the parallel speed-up. Each library is measured in a process of
its own, so that neither pays for the other's spinning threads.
"""
import argparse
import importlib.util
import json
import multiprocessing
import os
import pathlib
import subprocess
import sys
import time

import numba
import numpy as np

import kernelgrad as kg
import kernelgrad.kernels as K
from kernelgrad import nn
from kernelgrad.cli import build_mlp

from . import machine, steps
from .backend import cpu_time

GOAL = 1.3
SAMPLES, WIDTHS, BATCH = 5400, (784, 128, 128, 10), 64


def _spin(core):
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    while True:
        pass


class BusyCore:
    """A process spinning on one core (the last) for the length of a `with` block."""

    def __enter__(self):
        core = (os.cpu_count() or 1) - 1
        self.process = multiprocessing.get_context("spawn").Process(
            target=_spin, args=(core,), daemon=True)
        self.process.start()
        time.sleep(0.5)  # let it start spinning before anything is timed
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
        return False


def _epoch_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((SAMPLES, WIDTHS[0]), dtype=np.float32)
    y = rng.integers(0, WIDTHS[-1], SAMPLES)
    return x, y


def kernelgrad_workloads():
    x, y = _epoch_data()
    kg.manual_seed(0)
    model = build_mlp(WIDTHS[0], WIDTHS[1:-1], WIDTHS[-1], "relu", 0.2)
    model.compile(kg.optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss())
    a = np.random.default_rng(1).standard_normal((1024, 1024), dtype=np.float32)
    return {"demo MLP epoch": lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0),
            "wide MLP step": steps.captured_step(512, (784, 1024, 1024, 10), 0.2),
            "GEMM 1024^3": lambda: K.matmul(a, a)}


def torch_workloads():
    import torch
    x, y = (torch.from_numpy(v) for v in _epoch_data())
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Dropout(0.2),
        torch.nn.Linear(128, 128), torch.nn.ReLU(), torch.nn.Dropout(0.2),
        torch.nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch():
        order = torch.randperm(SAMPLES)
        for i in range(0, SAMPLES, BATCH):
            index = order[i:i + BATCH]
            optimizer.zero_grad()
            loss = loss_fn(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
            loss.item()
    a = torch.randn(1024, 1024)
    return {"demo MLP epoch": epoch,
            "wide MLP step": steps.torch_step(512, (784, 1024, 1024, 10), 0.2),
            "GEMM 1024^3": lambda: torch.mm(a, a)}


def _set_threads(library, threads):
    if library == "kernelgrad":
        numba.set_num_threads(threads)
    else:
        import torch
        torch.set_num_threads(threads)


def measure(workloads, library, repeats):
    """{workload: {"default": s, "1 thread": s}} on the machine as it is now."""
    default = numba.get_num_threads() if library == "kernelgrad" else None
    if library == "pytorch":
        import torch
        default = torch.get_num_threads()
    out = {}
    for name, fn in workloads.items():
        out[name] = {}
        for label, threads in (("default", default), ("1 thread", 1)):
            _set_threads(library, threads)
            try:
                timing = cpu_time(fn, min_repeats=repeats, budget_s=1.0)
            finally:
                _set_threads(library, default)
            out[name][label] = {"median_s": timing.median, "spread": timing.spread,
                                "noisy": timing.noisy}
    return out


def table(results):
    lines = [f"{'workload':<16}{'library':<12}{'idle ms':>9}{'idle 1t':>9}{'speed-up':>9}"
             f"{'busy ms':>9}{'busy 1t':>9}{'busy/1t':>9}  goal <= {GOAL}x"]
    for name in results["idle"]["kernelgrad"]:
        for library in results["idle"]:
            idle, busy = results["idle"][library][name], results["busy"][library][name]
            i, i1 = idle["default"]["median_s"], idle["1 thread"]["median_s"]
            b, b1 = busy["default"]["median_s"], busy["1 thread"]["median_s"]
            noisy = any(r[k]["noisy"] for r in (idle, busy) for k in r)
            verdict = "" if library != "kernelgrad" else ("ok" if b / b1 <= GOAL else "MISSED")
            lines.append(f"{name:<16}{library:<12}{i * 1e3:9.2f}{i1 * 1e3:9.2f}{i1 / i:8.2f}x"
                         f"{b * 1e3:9.2f}{b1 * 1e3:9.2f}{b / b1:8.2f}x  {verdict}"
                         + ("  noisy" if noisy else ""))
    return "\n".join(lines)


def child(library, repeats):
    """Measure one library in this process (run as a child: no other library's threads)."""
    workloads = kernelgrad_workloads() if library == "kernelgrad" else torch_workloads()
    print(json.dumps(measure(workloads, library, repeats)))
    return 0


def measure_in_child(library, repeats):
    run = subprocess.run([sys.executable, "-m", "bench.contention", "--child", library,
                          "--repeats", str(repeats)], capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"measuring {library} failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.contention",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row, at least")
    parser.add_argument("--out", default=None, help="results file (default: "
                        "bench/results/<machine>-<date>/contention.json)")
    parser.add_argument("--child", choices=["kernelgrad", "pytorch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.repeats)
    if (os.cpu_count() or 1) < 2:
        parser.error("needs at least 2 cores (one is made busy)")
    libraries = ["kernelgrad"]
    if importlib.util.find_spec("torch") is not None:
        libraries.append("pytorch")
    else:
        print("PyTorch is not installed: its rows are left out")
    info = K.cpu_info()
    load, warning = machine.busy_check()
    print(f"{os.cpu_count()} cores, Numba {numba.get_num_threads()} threads, target "
          f"{info['target']} ({info['vector_bytes']}-byte vectors); other processes' load "
          f"{load:.2f} cores; the busy loop goes on core {(os.cpu_count() or 1) - 1}",
          flush=True)
    if warning:
        print(warning + " (the idle figures are not idle)", flush=True)
    results = {"idle": {}, "busy": {}}
    for library in libraries:  # each in a process of its own: no other library's threads
        results["idle"][library] = measure_in_child(library, args.repeats)
    with BusyCore():
        for library in libraries:
            results["busy"][library] = measure_in_child(library, args.repeats)
    text = table(results)
    print(text)
    from .runner import results_path
    out = pathlib.Path(args.out or results_path(machine.machine_name(), "contention"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine.describe(), "table": text.splitlines(),
                               "other_load_cores": load, "results": results}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
