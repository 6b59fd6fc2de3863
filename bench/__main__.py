"""python -m bench [--device cpu|cuda] [--quick] [--tiny] [--only SUBSTRING] [--name NAME]

Every kernel against its NumPy baseline, GEMMs once per implementation (numba, blas and
what auto picked), then the MLP training steps against PyTorch, NumPy and the GEMM floor."""
import argparse
import sys

from .cases import all_cases
from .runner import run


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--quick", action="store_true", help="skip the largest GEMM")
    parser.add_argument("--tiny", action="store_true",
                        help="cuda: every case at a small size, to check that the benchmark runs "
                             "(e.g. on the CPU emulator); its timings mean nothing")
    parser.add_argument("--only", default=None,
                        help="run the ops whose name contains this ('step': the training steps)")
    parser.add_argument("--name", default=None, help="results file name (default cpu-<host>)")
    args = parser.parse_args(argv)
    if args.tiny and args.device != "cuda":
        parser.error("--tiny is for --device cuda")
    if args.device == "cuda":
        from kernelgrad.devices import cuda_available
        if not cuda_available():
            parser.error("--device cuda needs an NVIDIA GPU and CuPy (pip install -e "
                         "'.[cuda12]' or '.[cuda13]')")
        from . import gpu
        cases = [c for c in gpu.all_cases(args.quick, args.tiny)
                 if args.only is None or args.only in c.op]
        return gpu.run(cases, args.name, steps=args.only in (None, "step"), tiny=args.tiny)
    cases = [c for c in all_cases(args.quick) if args.only is None or args.only in c.op]
    if not cases and args.only != "step":
        parser.error(f"no benchmark op contains {args.only!r}")
    return run(cases, args.name, steps=args.only in (None, "step"))


if __name__ == "__main__":
    sys.exit(main())
