"""Where a captured training step's time goes, part by part, against its GEMM floor.

    python -m bench.step_profile            # the wide MLP of bench.steps
    python -m bench.step_profile demo       # the demo MLP (or softmax, logistic)

Each part of the recorded step (every layer's forward and backward, each dropout, the
loss, the optimizer's update) is timed inside real steps, so every part sees the caches
the step before it left, as in training. The GEMM floor (bench.floor.gemm_floor) is the
step's GEMMs through OpenBLAS; the work a step needs besides its GEMMs (the optimizer,
dropout, activation backward, bias gradients, loss) is the rest. That rest, over the floor,
is how far above 1.0x of the floor the step must be unless its GEMMs beat the BLAS's.
"""
import sys
import time
from collections import defaultdict
from contextlib import contextmanager

import numpy as np

from kernelgrad.kernels.ops import activations as activation_ops
from kernelgrad.kernels.ops import dropout as dropout_ops
from kernelgrad.kernels.ops import losses as loss_ops
from kernelgrad.kernels.ops import matmul as matmul_ops
from kernelgrad.kernels.ops import softmax_cross_entropy as softmax_ops
from kernelgrad.nn import capture

from .floor import gemm_floor
from .steps import MLPS, capture_mlp


@contextmanager
def _timed(totals):
    """Time the recorded step's parts into totals[label] while inside."""
    patched = []

    def wrap(owner, name, label):
        original = getattr(owner, name)
        patched.append((owner, name, original))

        def timed(*args, **kwargs):
            start = time.perf_counter()
            result = original(*args, **kwargs)
            totals[label(args)] += time.perf_counter() - start
            return result
        setattr(owner, name, timed)

    def stage(kind):
        def label(args):
            s = args[0]
            return f"{type(s).__name__.strip('_').lower()} {kind} #{s.position}"
        return label

    for cls in (capture._Linear, capture._Activation, capture._Dropout):
        wrap(cls, "run", stage("forward"))
        wrap(cls, "back", stage("backward"))
    for cls in (capture._Linear, capture._Activation):  # with the dropout after a ReLU
        wrap(cls, "back_through", stage("and dropout backward"))
    wrap(capture._OptimizerPlan, "run", lambda args: "optimizer update")
    wrap(softmax_ops, "run_cpu", lambda args: "loss (softmax cross-entropy)")
    wrap(loss_ops, "_run_cpu", lambda args: "loss (elementwise: BCE, MSE)")
    # inside the linear layers' backward, besides their GEMMs
    wrap(matmul_ops, "column_sums", lambda args: "  of which bias gradients")
    wrap(activation_ops, "backward", lambda args: "  of which activation backward")
    wrap(dropout_ops, "relu_dropout_backward_cpu",
         lambda args: "  of which ReLU + dropout backward (+ bias)")
    try:
        yield
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def profile(name, batch, widths, p, steps=30):
    captured, x, y = capture_mlp(batch, widths, p)

    def step():
        captured(x, y)
    step()  # runs eagerly and records the plan
    (plan,) = captured.plans.values()
    for position, stage in enumerate(plan.stages):
        stage.position = position
    for _ in range(3):
        step()
    totals = defaultdict(float)
    with _timed(totals):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        total = (time.perf_counter() - start) / steps
    floor = gemm_floor(batch, widths)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        floor()
        times.append(time.perf_counter() - start)
    floor_s = float(np.median(times))
    print(f"{name}: batch {batch}, {'-'.join(map(str, widths))}, dropout {p}; "
          f"{steps} captured steps")
    def order(label):  # stages in step order, then the loss and the update, then details
        if "#" in label:
            return int(label.split("#")[1]), "backward" in label, label
        return (2000 if label.startswith("  of") else 1000), label
    for label, seconds in sorted(totals.items(), key=lambda kv: order(kv[0])):
        print(f"  {label:<36} {seconds / steps * 1e3:8.3f} ms")
    besides = sum(v for k, v in totals.items()
                  if k.startswith(("dropout", "activation", "optimizer", "loss", "  of")))
    print(f"  {'step':<36} {total * 1e3:8.3f} ms")
    print(f"  {'GEMM floor (OpenBLAS, median)':<36} {floor_s * 1e3:8.3f} ms")
    print(f"  step / floor {total / floor_s:.2f}x; work besides the GEMMs "
          f"{besides / steps * 1e3:.3f} ms = {besides / steps / floor_s:.0%} of the floor")


def main(argv):
    which = argv[0] if argv else "wide"
    for name, batch, widths, p in MLPS:
        if name.startswith(which):
            profile(name, batch, widths, p)
            return 0
    print(f"no MLP named {which!r} ({', '.join(m[0].split()[0] for m in MLPS)})")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
