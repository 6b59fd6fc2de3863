"""python -m bench [--device cpu|cuda] [--quick] [--tiny] [--only TEXT] [--out FILE]

Every kernel against what a user of the device would run instead, checked against the
reference first: the large group (GEMMs per implementation, the fused and elementwise
ops at sizes past the caches), the small group (per-call cost at the demo MLP's sizes,
against PyTorch), then the MLP training steps. Prints a table and writes a JSON file and
a PNG chart under bench/results/<machine>-<date>/."""
import argparse
import sys

from .backend import Backend
from .cases import large_cases, small_cases


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--quick", action="store_true", help="skip the GEMMs of 2048^3 and up")
    parser.add_argument("--tiny", action="store_true",
                        help="every case at a small size, to check that the benchmark runs "
                             "(e.g. on the CPU emulator of CUDA); its timings mean nothing")
    parser.add_argument("--only", default=None,
                        help="run the rows whose op, name or group contains this text "
                             "('step': the training steps alone)")
    parser.add_argument("--out", default=None, help="results file (default: "
                        "bench/results/<machine>-<date>/<device>.json)")
    args = parser.parse_args(argv)
    if args.device == "cuda":
        from kernelgrad.devices import cuda_available
        if not cuda_available():
            parser.error("--device cuda needs an NVIDIA GPU and CuPy (pip install -e "
                         "'.[cuda12]' or '.[cuda13]')")
    backend = Backend(args.device)
    cases = large_cases(backend, args.quick, args.tiny) + small_cases(backend)
    if args.only is not None:
        cases = [c for c in cases
                 if any(args.only in text for text in (c.op, c.name, c.group))]
        if not cases and args.only != "step":
            parser.error(f"no benchmark row matches {args.only!r}")
    from .runner import run
    return run(backend, cases, args.out, steps=args.only in (None, "step"), tiny=args.tiny)


if __name__ == "__main__":
    sys.exit(main())
