"""Running the cases on one device: check, time, report.

Each row: our median time and its spread, each baseline's (every library timed in
backend.ROUNDS blocks taken in turn; its time is the median of its blocks' medians), the
ratio against the anchor baseline (the first one, or for a GEMM the fastest BLAS on the
machine, or PyTorch for the per-call rows), the roofline fraction (of the best GEMM's rate;
for a memory-bound row on the CPU, a copy of the same bytes timed in the same rounds over
our time, every round's arrays in new memory; on the GPU, the copy bandwidth measured
once), and a noisy mark when any of its timings spread by more than 20%. Results go to
bench/results/<machine>-<date>/<device>.json with a PNG chart beside it; an existing file
is never overwritten.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
from numba import prange

import kernelgrad.kernels as K
from kernelgrad.kernels import _alloc
from kernelgrad.kernels.cpu._jit import kernel

from . import machine
from .backend import NOISY_SPREAD, Prepared, paired_ratio
from .cases import forced_openblas_of
from .report import format_ms

RESULTS = Path(__file__).parent / "results"


def copy_bandwidth(backend, elements=1 << 26):
    """Bytes per second of the best copy of 256 MiB (read + write) on this device."""
    xp = backend.xp
    src = xp.ones(elements, np.float32)
    dst = xp.empty_like(src)
    candidates = [lambda: xp.copyto(dst, src)]
    if backend.name == "cpu":
        candidates.append(lambda: _copy.parallel(src, dst))
    return 2 * src.nbytes / min(backend.time(fn).median for fn in candidates)


@kernel
def _copy(src, dst):
    """A copy built as our kernels are: parallel, and serial for small or busy cases."""
    for i in prange(src.size):
        dst[i] = src[i]


def gemm_rate(backend, n, dtype=np.float32):
    """FLOP/s of the fastest GEMM library here (BLAS, or PyTorch's) at n^3."""
    rng = np.random.default_rng(0)
    a = backend.array(rng.standard_normal((n, n)).astype(dtype))
    b = backend.array(rng.standard_normal((n, n)).astype(dtype))
    times = [backend.time(lambda: backend.xp.matmul(a, b)).median]
    if backend.torch is not None:
        ta, tb = backend.tensor(a), backend.tensor(b)
        times.append(backend.time(lambda: backend.torch.mm(ta, tb)).median)
    forced = forced_openblas_of(backend)
    if forced is not None:
        times.append(backend.time(forced.gemm(n, n, n, dtype=np.dtype(dtype).name)).median)
    return 2 * n ** 3 / min(times)


# The key of the copy timed beside a memory-bound row (never a baseline)
COPY = "copy of the same bytes"


class PairedCopy:
    """A copy moving nbytes (half read, half written) on the CPU, to time in turn with a
    memory-bound kernel: its time over the kernel's is the row's roofline. This host
    family's copy bandwidth moved by a third between runs minutes apart, so one copy
    measured at the start of a run made rows of different runs incomparable."""

    def __init__(self, nbytes):
        self.elements = max(1, nbytes // 8)
        self.place()

    def place(self):
        """New memory for both arrays (see place_afresh): both taken before the old go."""
        src = np.ones(self.elements, np.float32)
        self.src, self.dst = src, np.empty_like(src)

    def __call__(self):
        # on the threads our kernels would take (Kernel: the parallel threshold and the
        # cores other processes leave idle), so a busy core does not inflate the roofline
        return _copy(self.src.size, self.src, self.dst)


def paired_copy(backend, nbytes):
    """A PairedCopy of nbytes on the CPU; None on the GPU (one bandwidth measurement)."""
    return PairedCopy(nbytes) if backend.name == "cpu" else None


# A memory-bound row's arrays of at least this many bytes get new memory every round.
# On a 2-core Zen 4 guest the same kernel on the same values took 4.6 ms or 6.6-8.2 ms
# (GELU, 16M float32, haswell build) depending only on which buffers held its input and
# output, and a copy of those bytes 2.2 to 4.5 ms between one allocation and the next:
# with one placement per row, a row's roofline was a draw of that lottery. Smaller
# arrays come from malloc's heap and sit in the caches.
PLACE_MIN_BYTES = 1 << 20


def place_afresh(data):
    """Move every NumPy array of data (a value, or an item of a list value) of at least
    PLACE_MIN_BYTES to new memory holding the same values, keeping arrays that were one
    object one object, and point the PyTorch tensors that shared an old array's memory at
    the new one; then drop our idle output buffers, so our next outputs get new memory too."""
    moved = {}

    def move(value):
        if isinstance(value, np.ndarray) and value.nbytes >= PLACE_MIN_BYTES:
            if id(value) not in moved:
                moved[id(value)] = (value, value.copy(order="K"))  # its layout kept
            return moved[id(value)][1]
        return value
    for key, value in data.items():
        data[key] = [move(v) for v in value] if isinstance(value, list) else move(value)
    by_address = {old.ctypes.data: new for old, new in moved.values()}
    for key, value in data.items():
        new = by_address.get(value.data_ptr()) if hasattr(value, "data_ptr") else None
        if new is not None and tuple(value.shape) == new.shape:
            import torch  # only a tensor's owner gets here
            data[key] = torch.from_numpy(new)
    _alloc.release()


def _stats(timing):
    return {"median_s": timing.median, "spread": timing.spread, "repeats": timing.repeats,
            "block_medians_s": list(timing.blocks)}


def run_case(case, backend, rng, bandwidth, flop_rate, flop_rate64=None):
    """Check one case against the reference, then time ours and each baseline (a float64
    GEMM's roofline against the best float64 GEMM, flop_rate64)."""
    data = case.make(rng, backend)
    label = case.name + (f" [{case.impl}]" if case.impl else "")
    row = {"op": case.op, "name": case.name, "label": label, "shape": case.shape,
           "group": case.group}
    error = case.check(data, case.ours(data), backend)
    if case.impl:
        row["impl"] = case.impl
        if case.impl == "auto" and backend.name == "cpu":  # the first call measured or read
            picks = K.impl_choices()
            # A pick held for this process only (its rounds disagreed) is marked with ~; a
            # shape class with no pick is one auto gives to numba unmeasured (too small).
            row["auto_picked"] = "/".join(
                picks[key]["impl"] + ("~" if picks[key].get("provisional") else "")
                if key in picks else "numba, small" for key in case.shape_class)
            row["label"] = f"{case.name} [auto={row['auto_picked']}]"
    row["rel_error"] = error
    if not error <= case.tolerance:
        row["status"] = "FAIL"
        return row
    fns = {"kernelgrad": lambda: case.ours(data)}
    fns.update({library: fn if hasattr(fn, "samples") else (lambda fn=fn: fn(data))
                for library, fn in case.baselines.items()})
    if case.before_each is not None:
        fns = {library: Prepared(fn, lambda: case.before_each(data))
               for library, fn in fns.items()}
    copy = None if case.flops else paired_copy(backend, case.bytes_moved(data))
    between_rounds = None
    if copy is not None:
        fns[COPY] = copy

        def between_rounds():  # a new draw of memory for every library and the copy
            place_afresh(data)
            copy.place()
    times = backend.time_all(fns, between_rounds=between_rounds)
    copy_time = times.pop(COPY, None)
    baselines = [lib for lib in times if lib != "kernelgrad"]
    if case.group == "small" and "torch" in times:
        anchor = "torch"
    elif case.anchor == "fastest":
        anchor = min(baselines, key=lambda lib: times[lib].median)
    else:
        anchor = baselines[0]
    ours = times["kernelgrad"].median
    row.update(status="ok", times={lib: _stats(t) for lib, t in times.items()}, anchor=anchor,
               ours_s=ours, anchor_s=times[anchor].median, ratio=times[anchor].median / ours,
               noisy=any(t.noisy for t in times.values()))
    if case.flops:
        float64 = case.extra.get("dtype") == "float64" and flop_rate64
        row["roofline"] = case.flops(data) / ours / (flop_rate64 if float64 else flop_rate)
        row["roofline_basis"] = f"the best {'float64' if float64 else 'float32'} GEMM's rate"
    elif copy_time is not None:
        # round by round, so that a drift of the host's speed cancels
        row["roofline"] = paired_ratio(copy_time, times["kernelgrad"])
        row["roofline_basis"] = "a copy of the same bytes, timed in turn with it"
        row["copy_s"] = copy_time.median
    else:
        row["roofline"] = case.bytes_moved(data) / ours / bandwidth
        row["roofline_basis"] = "copy bandwidth"
    return row


HEADER = (f"{'op [impl]':<42} {'shape':<18} {'ours ms':>9} {'±':>4} {'anchor':>14} "
          f"{'anchor ms':>10} {'ratio':>8} {'roofline':>9}")


def format_row(row):
    if row["status"] != "ok":
        return (f"{row['label']:<42} {row['shape']:<18} FAIL (relative error "
                f"{row['rel_error']:.2e})")
    spread = row["times"]["kernelgrad"]["spread"]
    mark = "  noisy" if row["noisy"] else ""
    return (f"{row['label']:<42} {row['shape']:<18} {format_ms(row['ours_s']):>9} "
            f"{spread * 100:>3.0f}% {row['anchor']:>14} {format_ms(row['anchor_s']):>10} "
            f"{row['ratio']:>7.2f}x {row['roofline'] * 100:>8.1f}%{mark}")


def results_path(name, device):
    """bench/results/<name>-<date>/<device>.json, or <device>-2.json ... when taken."""
    folder = RESULTS / f"{name}-{time.strftime('%Y-%m-%d')}"
    folder.mkdir(parents=True, exist_ok=True)
    path, n = folder / f"{device}.json", 1
    while path.exists() or path.with_suffix(".png").exists():
        n += 1
        path = folder / f"{device}-{n}.json"
    return path


def save(report, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise FileExistsError(f"{path} exists: results are never overwritten")
    path.write_text(json.dumps(report, indent=1))
    chart_path = chart(report, path.with_suffix(".png"))
    print(f"wrote {path}" + (f" and {chart_path}" if chart_path else ""))
    return path


def chart(report, path):
    """Each row's speed-up over its anchor (log scale), with both absolute times written
    on the bar; hatched bars are noisy rows."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        print("matplotlib is not installed: no chart")
        return None
    rows = [r for r in report["rows"] if r["status"] == "ok"]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(12, 0.3 * len(rows) + 2.2))
    y = np.arange(len(rows))
    ratios = [r["ratio"] for r in rows]
    colors = ["tab:green" if x >= 1 else "tab:red" for x in ratios]
    bars = ax.barh(y, ratios, color=colors, height=0.7)
    for bar, r in zip(bars, rows):
        if r["noisy"]:
            bar.set_hatch("///")
            bar.set_edgecolor("black")
    ax.set_yticks(y, [f"{r['label']}  {r['shape']}" for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=0.8)
    right = max(ratios) * 40
    ax.set_xlim(min(min(ratios) / 2, 0.5), right)
    for yi, r in zip(y, rows):
        ax.text(max(r["ratio"], 1.0) * 1.08, yi,
                f"{r['ours_s'] * 1e3:.3g} ms vs {r['anchor_s'] * 1e3:.3g} ms {r['anchor']}",
                va="center", fontsize=6.5)
    ax.set_xlabel("speed-up: anchor's time / kernelgrad's time (log scale; > 1: kernelgrad "
                  "is faster)")
    where = report["machine"]
    target = (f" ({where['target']}, {where['threads']} threads)"
              if "target" in where else "")  # CPU runs only
    title = (f"kernelgrad vs {report['baseline_name']} on {where['cpu']}{target}, "
             f"{report['date']}")
    if where.get("blas_forced"):
        title += f"; OpenBLAS also forced to {where['blas_forced']}"
    if report.get("busy_warning"):
        title += "\n" + report["busy_warning"]
    ax.set_title(title, fontsize=9)
    ax.legend(handles=[Patch(color="tab:green", label="kernelgrad faster"),
                       Patch(color="tab:red", label="kernelgrad slower"),
                       Patch(facecolor="white", edgecolor="black", hatch="///",
                             label=f"noisy (repeats spread > {NOISY_SPREAD:.0%})")],
              loc="lower right", fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def run(backend, cases, out=None, steps=True, tiny=False):
    """Check and time every case, then the training steps; print and save. Exit status 1
    when any check failed."""
    desc = machine.describe() if backend.name == "cpu" else gpu_describe()
    line = f"kernelgrad benchmark on {desc['cpu']} ({desc['machine']})"
    if backend.name == "cpu":
        line += (f", compile target {desc.get('target', '-')}, {desc.get('threads', '-')} "
                 f"threads, BLAS {desc.get('blas', '-')}")
        forced = forced_openblas_of(backend)
        if forced is not None:
            desc["blas_forced"] = forced.architecture
            line += (f"; NumPy's OpenBLAS runs narrower vectors than the compile target, "
                     f"so the GEMMs are also timed against OpenBLAS forced to "
                     f"{forced.architecture} (OPENBLAS_CORETYPE, a child process)")
    print(line)
    load, warning = machine.busy_check()
    if warning:
        print(warning)
    bandwidth = copy_bandwidth(backend, 1 << (14 if tiny else 26))
    flop_rate = gemm_rate(backend, 128 if tiny else (2048 if backend.name == "cpu" else 4096))
    flop_rate64 = None
    if any(c.extra.get("dtype") == "float64" and c.flops for c in cases):
        flop_rate64 = gemm_rate(backend, 128 if tiny else 1024, np.float64)
    print(f"measured: copy bandwidth {bandwidth / 1e9:.1f} GB/s, best float32 GEMM "
          f"{flop_rate / 1e9:.0f} GFLOP/s" + (f" (float64 {flop_rate64 / 1e9:.0f})"
                                            if flop_rate64 else "")
          + f"; other processes' load {load:.2f} cores")
    print(HEADER)
    rng = np.random.default_rng(0)
    rows = []
    for case in cases:
        row = run_case(case, backend, rng, bandwidth, flop_rate, flop_rate64)
        rows.append(row)
        print(format_row(row), flush=True)
        if backend.name == "cuda":
            backend.xp.get_default_memory_pool().free_all_blocks()
    step_rows = []
    if steps:
        if backend.name == "cpu":
            from . import steps as cpu_steps
            step_rows = cpu_steps.run_all()
        else:
            from . import gpu_step
            step_rows = gpu_step.run(flop_rate, tiny)
    _, after = machine.busy_check(0.5)
    report = {"device": backend.name, "machine": desc, "date": time.strftime("%Y-%m-%d %H:%M"),
              "baseline_name": f"{backend.array_library} / BLAS / PyTorch",
              "busy_warning": warning or after, "other_load_cores": load,
              "copy_bandwidth_Bps": bandwidth, "gemm_flops": flop_rate,
              "gemm_flops_float64": flop_rate64, "rows": rows,
              "training_steps": step_rows,
              "command": "python -m bench " + " ".join(sys.argv[1:])}
    save(report, out or results_path(desc["machine"], backend.name))
    ok = all(r["status"] == "ok" for r in rows) and all(
        r.get("status", "ok") == "ok" for r in step_rows)
    return 0 if ok else 1


def gpu_describe():
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    name = name.decode() if isinstance(name, bytes) else name
    return {"cpu": name, "machine": machine.slug(name), "cupy": cupy.__version__,
            "date": time.strftime("%Y-%m-%d")}
