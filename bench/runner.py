"""Timing, rooflines and reporting for `python -m bench`."""
import json
import platform
import socket
import statistics
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

import kernelgrad.kernels as K

RESULTS = Path(__file__).parent / "results"


# After a call, OpenBLAS's worker threads spin for about 0.1 s and Numba's OpenMP threads
# for a few ms before they sleep; on 2 cores a spinning pool halves the speed of the other
# library's threads. Each measurement starts after this pause, so it times one library
# alone, whichever ran before it.
SETTLE_S = 0.25


def median_time(fn, min_repeats=5, budget_s=0.5):
    """Median wall time of fn() after a settling pause and one warm-up call, repeated
    within a time budget."""
    time.sleep(SETTLE_S)
    fn()
    times = []
    start = time.perf_counter()
    # up to 400 runs: the median of a sub-millisecond op needs many to be stable here
    while len(times) < min_repeats or (time.perf_counter() - start < budget_s
                                       and len(times) < 400):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@njit(parallel=True, cache=True)
def _parallel_copy(src, dst):
    for i in prange(src.size):
        dst[i] = src[i]


def copy_bandwidth():
    """Bytes per second of the best copy of 256 MiB (read + write) on this machine."""
    src = np.ones(1 << 26, np.float32)
    dst = np.empty_like(src)
    best = min(median_time(lambda: np.copyto(dst, src)),
               median_time(lambda: _parallel_copy(src, dst)))
    return 2 * src.nbytes / best


def sgemm_rate():
    """FLOP/s of OpenBLAS (NumPy's matmul) SGEMM at 2048^3."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    b = rng.standard_normal((2048, 2048), dtype=np.float32)
    return 2 * 2048 ** 3 / median_time(lambda: a @ b)


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_case(case, rng, bandwidth, flop_rate, timer=median_time,
             flop_basis="OpenBLAS SGEMM rate"):
    """Check one case against the reference, then time ours and the baseline with `timer`
    (wall time here; CUDA events for bench/gpu.py)."""
    data = case.make(rng)
    row = {"op": case.op, "shape": case.shape}
    error = case.check(data, case.ours(data))
    if case.impl:
        row["impl"] = case.impl
        if case.impl == "auto":  # the first call above measured (or read) the choice
            picks = K.impl_choices()
            row["auto_picked"] = "/".join(picks.get(key, {}).get("impl", "?")
                                          for key in case.shape_class)
        row["op"] = f"{case.op} [{case.impl}" + (f"={row['auto_picked']}]"
                                                  if case.impl == "auto" else "]")
    row["rel_error"] = error
    if not error <= case.tolerance:
        row["status"] = "FAIL"
        return row
    ours = timer(lambda: case.ours(data))
    baseline = timer(lambda: case.baseline(data))
    row.update(status="ok", ours_s=ours, baseline_s=baseline, ratio=baseline / ours)
    if case.flops:
        row["roofline"] = case.flops(data) / ours / flop_rate
        row["roofline_basis"] = flop_basis
    else:
        row["roofline"] = case.bytes_moved(data) / ours / bandwidth
        row["roofline_basis"] = "copy bandwidth"
    return row


def format_row(row):
    if row["status"] != "ok":
        return f"{row['op']:<34} {row['shape']:<18} FAIL (relative error {row['rel_error']:.2e})"
    return (f"{row['op']:<34} {row['shape']:<18} {row['ours_s'] * 1e3:>9.3f} "
            f"{row['baseline_s'] * 1e3:>10.3f} {row['ratio']:>7.2f}x "
            f"{row['roofline'] * 100:>8.1f}%")


def run(cases, out_name=None, steps=True):
    rng = np.random.default_rng(0)
    threads = numba.get_num_threads()
    print(f"kernelgrad CPU benchmark on {cpu_model()}, {threads} Numba threads, "
          f"NumPy {np.__version__}, Numba {numba.__version__}")
    bandwidth = copy_bandwidth()
    flop_rate = sgemm_rate()
    print(f"measured: copy bandwidth {bandwidth / 1e9:.1f} GB/s, "
          f"OpenBLAS SGEMM {flop_rate / 1e9:.1f} GFLOP/s (2048^3)")
    print(f"{'op [impl]':<34} {'shape':<18} {'ours ms':>9} {'numpy ms':>10} {'ratio':>8} "
          f"{'roofline':>9}")
    rows = []
    for case in cases:
        row = run_case(case, rng, bandwidth, flop_rate)
        rows.append(row)
        print(format_row(row), flush=True)
    step_rows = []
    if steps:
        from . import steps as step_bench
        print()
        print(step_bench.header())
        step_rows = step_bench.run()
    report = {"device": "cpu", "host": socket.gethostname(), "cpu": cpu_model(),
              "threads": threads, "numpy": np.__version__, "numba": numba.__version__,
              "copy_bandwidth_Bps": bandwidth, "sgemm_flops": flop_rate, "rows": rows,
              "training_steps": step_rows,
              "command": "python -m bench", "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    save(report, out_name or f"cpu-{socket.gethostname()}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def save(report, name):
    """bench/results/<name>.json and its chart."""
    RESULTS.mkdir(exist_ok=True)
    json_path = RESULTS / f"{name}.json"
    json_path.write_text(json.dumps(report, indent=1))
    chart_path = chart(report["rows"], RESULTS / f"{name}.png", report)
    print(f"wrote {json_path}" + (f" and {chart_path}" if chart_path else ""))


def chart(rows, path, report):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart")
        return None
    ok = [r for r in rows if r["status"] == "ok"]
    labels = [f"{r['op']} {r['shape']}" for r in ok]
    ratios = [r["ratio"] for r in ok]
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(ok) + 1.5))
    colors = ["tab:green" if x >= 1 else "tab:red" for x in ratios]
    ax.barh(range(len(ok)), ratios, color=colors)
    ax.set_yticks(range(len(ok)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xlabel(f"speed-up over {report.get('baseline', 'NumPy')} (baseline time / "
                  "kernelgrad time), log scale")
    ax.set_title(report.get("title") or
                 f"kernelgrad CPU kernels vs NumPy — {report['cpu']}, "
                 f"{report['threads']} threads",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
