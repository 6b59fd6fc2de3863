"""The fuzz suite, one subprocess per category (run.py): every generated call raises a clear
ValueError or TypeError having changed nothing, or gives what the reference gives, and no
call crashes (a crash, such as a guard page hit, fails the test with the call's
description).

CI runs KERNELGRAD_FUZZ_EXAMPLES calls per category (default 150) with a fixed seed. A long
run: KERNELGRAD_FUZZ_MINUTES=30 repeats every category with new seeds until the time is
spent and prints the counts per category.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fuzz.calls import CATEGORIES

RUNNER = Path(__file__).with_name("run.py")
EXAMPLES = int(os.environ.get("KERNELGRAD_FUZZ_EXAMPLES", 150))
MINUTES = float(os.environ.get("KERNELGRAD_FUZZ_MINUTES", 0))


def run_category(category, examples, seed, log):
    done = subprocess.run([sys.executable, str(RUNNER), category, "--examples", str(examples),
                           "--seed", str(seed), "--log", str(log)],
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        last = log.read_text().splitlines()[-1:] if log.exists() else []
        how = (f"crashed (signal {-done.returncode})" if done.returncode < 0
               else f"failed (exit {done.returncode})")
        pytest.fail(f"fuzz category {category!r}, seed {seed}, {how}; last call: "
                    f"{last[0] if last else '?'}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_fuzz(category, tmp_path):
    counts = run_category(category, EXAMPLES, 0, tmp_path / "calls.log")
    assert counts["calls"] == EXAMPLES


@pytest.mark.skipif(not MINUTES, reason="the long run: set KERNELGRAD_FUZZ_MINUTES")
def test_fuzz_long(tmp_path, capsys):
    totals = {c: {"calls": 0, "raised": 0, "checked": 0} for c in CATEGORIES}
    deadline, seed = time.monotonic() + 60 * MINUTES, 1
    while time.monotonic() < deadline:
        for category in sorted(CATEGORIES):
            counts = run_category(category, 500, seed, tmp_path / "calls.log")
            for key in totals[category]:
                totals[category][key] += counts[key]
        seed += 1
    with capsys.disabled():
        print("\n| category | calls | ValueError/TypeError, nothing changed | checked against "
              "the reference | failures |\n|---|---:|---:|---:|---:|")
        for category, t in totals.items():
            print(f"| {category} | {t['calls']} | {t['raised']} | {t['checked']} | 0 |")
        print(f"| all | {sum(t['calls'] for t in totals.values())} | | | 0 |")
