"""Runs one fuzz category in this process and prints its counts as JSON (test_fuzz.py runs
it in a subprocess, so a crash is a failure that names the call being made).

    python tests/fuzz/run.py CATEGORY --examples N [--seed S] [--log FILE]

Every kernel output comes from the guarded allocator, so an overrun faults. Each call's
description goes to the log (flushed) before the call is made.
"""
import argparse
import json
import os
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.dirname(os.path.dirname(HERE))]

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import kernelgrad as kg  # noqa: E402
from fuzz import calls, guard  # noqa: E402
from kernelgrad.kernels import _alloc  # noqa: E402

COUNTS = {"calls": 0, "raised": 0, "checked": 0, "errors": {}}


def snapshot(call):
    return [(a, a.tobytes(), a.shape, a.dtype) for a in
            call.arrays() + list(getattr(call, "watch", []))]


def unchanged(before):
    for a, data, shape, dtype in before:
        assert a.shape == shape and a.dtype == dtype and a.tobytes() == data, \
            "an input changed although the call raised"


def run_one(call, log):
    log.write(call.describe() + "\n")
    log.flush()
    before = snapshot(call)
    rng_before = kg.get_rng_state()
    if hasattr(call, "prepare"):
        try:
            call.prepare()
        except (TypeError, ValueError, IndexError):
            pass  # a call whose arrays cannot be read as such: it must raise anyway
    COUNTS["calls"] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = call.fn(*call.args, **call.kwargs)
    except (ValueError, TypeError) as error:
        COUNTS["raised"] += 1
        kind = type(error).__name__
        COUNTS["errors"][kind] = COUNTS["errors"].get(kind, 0) + 1
        assert str(error), f"{type(error).__name__} without a message"
        unchanged(before)
        assert kg.get_rng_state() == rng_before, "a failed call moved the random state"
        if hasattr(call, "steps"):
            assert {k: v["step"] for k, v in call.state.items()} == call.steps, \
                "a failed step moved a step count"
        return
    except Exception as error:
        raise AssertionError(f"{call.describe()} raised {type(error).__name__}: {error} "
                             "(a ValueError or TypeError naming the problem was expected)")
    floats = [a.dtype for a in call.arrays() if a.dtype.kind == "f"]
    calls._CALL_DTYPE[0] = min(floats, key=lambda d: d.itemsize) if floats else np.float64
    call.check(call, out)
    COUNTS["checked"] += 1


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("category", choices=sorted(calls.CATEGORIES))
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", default=os.devnull)
    args = parser.parse_args(argv)
    _alloc.empty = guard.empty  # every kernel output against a guard page
    _alloc.empty_like = lambda a: guard.empty(a.shape, a.dtype)
    category = calls.CATEGORIES[args.category]
    np.seterr(all="ignore")

    with open(args.log, "w") as log:
        @seed(args.seed)
        @settings(max_examples=args.examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def fuzz(data):
            run_one(category(data), log)
        fuzz()
    print(json.dumps(COUNTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
