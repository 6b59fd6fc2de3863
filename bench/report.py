"""Markdown tables from a results file, for docs/results.md and the README:

    python -m bench.report bench/results/<machine>-<date>/cpu.json

prints where and how it was measured, the large and small groups' tables (ours, the
anchor, the ratio, the roofline, noisy rows marked) and the training steps."""
import json
import sys


def format_ms(seconds):
    """Milliseconds, three decimals, or three significant digits under 0.1 ms (a per-call
    row's 1.66 us is 0.00166, not 0.002)."""
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms >= 0.1 else f"{ms:.3g}"


def ops_table(rows, group):
    picked = [r for r in rows if r.get("group", "large") == group]
    if not picked:
        return ""
    libraries = []
    for r in picked:
        for lib in r.get("times", {}):
            if lib != "kernelgrad" and lib not in libraries:
                libraries.append(lib)
    head = " | ".join(f"{lib} ms" for lib in libraries)
    lines = [f"| op [impl] | shape | ours ms (spread) | {head} | ratio (vs) | roofline |",
             "|---|---|---:|" + "---:|" * len(libraries) + "---:|---:|"]
    for r in picked:
        if r["status"] != "ok":
            lines.append(f"| {r['label']} | {r['shape']} | FAIL | " + "| " * len(libraries)
                         + "| |")
            continue
        ours = r["times"]["kernelgrad"]
        cells = " | ".join(format_ms(r["times"][lib]["median_s"]) if lib in r["times"] else "-"
                           for lib in libraries)
        noisy = " (noisy)" if r["noisy"] else ""
        lines.append(f"| {r['label']} | {r['shape']} | {format_ms(ours['median_s'])} "
                     f"(±{ours['spread'] * 100:.0f}%) | {cells} | {r['ratio']:.2f}x "
                     f"({r['anchor']}){noisy} | {r['roofline'] * 100:.0f}% |")
    return "\n".join(lines)


def floor_ratio(step):
    """A training step row's captured / GEMM floor: paired round by round where the row
    has it (bench.steps), else the ratio of the medians (older results; the eager step's
    where there was no captured one)."""
    if "captured_floor_ratio" in step:
        return step["captured_floor_ratio"]
    return (step.get("captured_s") or step["kernelgrad_s"]) / step["gemm_floor_s"]


def steps_table(report):
    steps = report.get("training_steps") or []
    if not steps or "gemm_floor_s" not in steps[0]:
        return ""
    lines = ["| training step | shape | eager ms | captured ms | PyTorch ms | NumPy ms | its "
             "GEMMs through OpenBLAS, ms | captured / GEMMs | captured / PyTorch | "
             "captured / NumPy |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in steps:
        eager, torch = s["kernelgrad_s"], s.get("pytorch_s")
        ours = s.get("captured_s") or eager
        vs_torch = f"{ours / torch:.2f}x" if torch else "-"
        lines.append(f"| {s['mlp']} | {s['shape']}, dropout {s['dropout']}, Adam | "
                     f"{eager * 1e3:.2f} | {format_ms(s.get('captured_s'))[:-1]} | "
                     f"{format_ms(torch)[:-1]} | {s['numpy_s'] * 1e3:.2f} | "
                     f"{s['gemm_floor_s'] * 1e3:.2f} | "
                     f"{floor_ratio(s):.2f}x | "
                     f"{vs_torch} | {ours / s['numpy_s']:.2f}x |"
                     + (" noisy" if s.get("noisy") else ""))
    return "\n".join(lines)


def describe(report):
    m = report["machine"]
    if "target" in m:  # a CPU run
        text = (f"{m['cpu']}, {m.get('cores', '?')} cores; kernels compiled for "
                f"{m['target']} ({m.get('vector_bytes', '?')}-byte vectors, GEMM tile "
                f"{m.get('gemm_tile_float32', '?')}), {m.get('threads', '?')} threads; ")
    else:
        text = f"{m['cpu']}; "
    text += (f"{report['date']}. Copy bandwidth {report['copy_bandwidth_Bps'] / 1e9:.1f} GB/s, "
            f"best float32 GEMM {report['gemm_flops'] / 1e9:.0f} GFLOP/s"
            + (f", float64 {report['gemm_flops_float64'] / 1e9:.0f}"
               if report.get("gemm_flops_float64") else "") + ".")
    blas = ", ".join(f"{name} ({kernel} kernel)" for name, kernel, _ in m.get("blas", []))
    if blas:
        text += f" BLAS: {blas}."
    if m.get("blas_forced"):
        text += f" OpenBLAS also forced to its {m['blas_forced']} kernel (a child process)."
    if report.get("busy_warning"):
        text += f" {report['busy_warning']}"
    return text


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__)
        return 2
    with open(argv[0]) as f:
        report = json.load(f)
    print(describe(report) + "\n")
    for group in ("large", "small"):
        table = ops_table(report["rows"], group)
        if table:
            print(table + "\n")
    steps = steps_table(report)
    if steps:
        print(steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
