"""The README's Results tables from a results file:

    python -m bench.report bench/results/cpu-vm.json

prints the measured bandwidth and GEMM rate, the per-op table and the training-step
table as Markdown, so the README quotes one run exactly."""
import json
import sys


def _ms(seconds):
    return f"{seconds * 1e3:.3f}"


def ops_table(report):
    baseline = "NumPy ms" if report.get("device") == "cpu" else "baseline ms"
    lines = [f"| op [impl] | shape | ours ms | {baseline} | ratio | roofline |",
             "|---|---|---:|---:|---:|---:|"]
    for r in report["rows"]:
        if r["status"] != "ok":
            lines.append(f"| {r['op']} | {r['shape']} | FAIL | | | |")
            continue
        lines.append(f"| {r['op']} | {r['shape']} | {_ms(r['ours_s'])} | {_ms(r['baseline_s'])} "
                     f"| {r['ratio']:.2f}x | {r['roofline'] * 100:.0f}% |")
    return "\n".join(lines)


def steps_table(report):
    steps = report.get("training_steps") or []
    if not steps:
        return ""
    lines = ["| training step | shape | ours ms | PyTorch ms | NumPy ms | its GEMMs through "
             "OpenBLAS, ms | ours / GEMMs | ours / PyTorch | ours / NumPy |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in steps:
        ours = s["kernelgrad_s"]
        lines.append(f"| {s['mlp']} | {s['shape']}, dropout {s['dropout']}, Adam | "
                     f"{ours * 1e3:.2f} | {s['pytorch_s'] * 1e3:.2f} | "
                     f"{s['numpy_s'] * 1e3:.2f} | {s['gemm_floor_s'] * 1e3:.2f} | "
                     f"{ours / s['gemm_floor_s']:.2f}x | {ours / s['pytorch_s']:.2f}x | "
                     f"{ours / s['numpy_s']:.2f}x |")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__)
        return 2
    with open(argv[0]) as f:
        report = json.load(f)
    print(f"Measured in that run: copy bandwidth {report['copy_bandwidth_Bps'] / 1e9:.1f} GB/s, "
          f"OpenBLAS SGEMM {report['sgemm_flops'] / 1e9:.0f} GFLOP/s.\n")
    print(ops_table(report))
    steps = steps_table(report)
    if steps:
        print()
        print(steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
