"""impl= on matmul and linear: explicit choices, the environment override, and auto's
measured choice, recorded per shape class in a cache file and read back from it."""
import json
import os

import numpy as np
import pytest

import kernelgrad.kernels as K
from kernelgrad.kernels import _autotune
from kernelgrad.kernels.ops import matmul as ops_matmul

from conftest import assert_close


@pytest.fixture
def auto(monkeypatch, tmp_path):
    """impl="auto" as a user gets it (no KERNELGRAD_IMPL), with an empty cache in tmp_path."""
    monkeypatch.delenv("KERNELGRAD_IMPL", raising=False)
    monkeypatch.setenv("KERNELGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_autotune, "_choices", None)
    monkeypatch.setattr(_autotune, "_provisional", {})
    monkeypatch.setattr(_autotune, "SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(_autotune, "NOISE", float("inf"))  # record whatever was measured
    monkeypatch.setattr(_autotune, "BUSY_CORES", float("inf"))
    ops_matmul._plans.clear()  # plans hold resolved impls
    yield tmp_path
    ops_matmul._plans.clear()


def no_measuring(candidates):
    raise AssertionError("measured although the choice was given or cached")


@pytest.fixture(autouse=True)
def small_shapes_measured(monkeypatch):
    """These tests use small shapes; let auto measure them (normally it runs ours)."""
    monkeypatch.setattr(ops_matmul, "AUTO_MIN_MACS", 0)
    ops_matmul._plans.clear()


def operands(rng):
    return rng.standard_normal((70, 50)).astype(np.float32), \
        rng.standard_normal((50, 40)).astype(np.float32)


def test_small_gemms_run_ours_without_measuring(auto, rng, monkeypatch):
    monkeypatch.setattr(ops_matmul, "AUTO_MIN_MACS", 1 << 24)
    ops_matmul._plans.clear()
    monkeypatch.setattr(_autotune, "measure", no_measuring)
    a, b = operands(rng)
    assert_close(K.matmul(a, b), a.astype(np.float64) @ b, 1e-5, what="small auto")
    assert K.impl_choices() == {}


def test_auto_measures_once_and_caches_to_disk(auto, rng, monkeypatch):
    a, b = operands(rng)
    assert_close(K.matmul(a, b), a.astype(np.float64) @ b, 1e-5, what="auto matmul")
    key = K.gemm_shape_class("matmul", np.float32, 70, 40, 50)
    choice = K.impl_choices()[key]
    assert choice["impl"] in ("numba", "blas")
    assert set(choice["seconds"]) == {"numba", "blas"}
    assert choice["impl"] == min(choice["seconds"], key=choice["seconds"].get)
    files = os.listdir(auto)
    assert len(files) == 1 and files[0].startswith("impl-choices-")
    assert json.loads((auto / files[0]).read_text())[key]["impl"] == choice["impl"]

    # A new process reads the file instead of measuring again; a shape of the same
    # class (sizes within a factor sqrt 2) shares the choice.
    monkeypatch.setattr(_autotune, "_choices", None)
    ops_matmul._plans.clear()
    monkeypatch.setattr(_autotune, "measure", no_measuring)
    a2 = rng.standard_normal((64, 48)).astype(np.float32)
    b2 = rng.standard_normal((48, 36)).astype(np.float32)
    assert_close(K.matmul(a2, b2), a2.astype(np.float64) @ b2, 1e-5, what="cached choice")


def test_auto_follows_a_recorded_choice(auto, rng, monkeypatch):
    a, b = operands(rng)
    key = K.gemm_shape_class("matmul", np.float32, 70, 40, 50)
    path = _autotune.cache_path()
    with open(path, "w") as f:
        json.dump({key: {"impl": "blas", "seconds": {"numba": 2.0, "blas": 1.0}}}, f)
    monkeypatch.setattr(_autotune, "measure", no_measuring)
    used = []
    real_matmul = np.matmul
    monkeypatch.setattr(ops_matmul.np, "matmul", lambda *args, **kw: used.append(1) or
                        real_matmul(*args, **kw))
    assert_close(K.matmul(a, b), a.astype(np.float64) @ b, 1e-5, what="recorded blas")
    assert used, "the recorded choice (blas) was not used"


def test_linear_backward_takes_one_library_for_both_gemms(auto, rng, monkeypatch):
    """dx's and dw's GEMMs recorded for different libraries one by one: linear_backward
    still runs both through one, measured as a pair under its own key (two thread pools
    inside one call fought and took 1.6x either library alone)."""
    x = rng.standard_normal((70, 50)).astype(np.float32)
    w = rng.standard_normal((50, 40)).astype(np.float32)
    dy = rng.standard_normal((70, 40)).astype(np.float32)
    dx_key = K.gemm_shape_class("matmul", np.float32, 70, 50, 40, False, True)
    dw_key = K.gemm_shape_class("matmul", np.float32, 50, 40, 70, True, False)
    with open(_autotune.cache_path(), "w") as f:
        json.dump({dx_key: {"impl": "numba", "seconds": {"numba": 1.0, "blas": 2.0}},
                   dw_key: {"impl": "blas", "seconds": {"numba": 2.0, "blas": 1.0}}}, f)
    ran = []
    for impl in ("numba", "blas"):
        real = getattr(ops_matmul.Gemm, impl)
        monkeypatch.setattr(ops_matmul.Gemm, impl,
                            lambda self, *args, impl=impl, real=real: ran.append(impl) or
                            real(self, *args))
    dx, dw, db = K.linear_backward(dy, x, w, None)
    assert_close(dx, dy.astype(np.float64) @ w.T, 1e-5, what="dx")
    assert_close(dw, x.T.astype(np.float64) @ dy, 1e-5, what="dw")
    joint = K.linear_backward_shape_class(np.float32, 70, 50, 40)
    pick = K.impl_choices()[joint]["impl"]
    ran.clear()
    K.linear_backward(dy, x, w, None)
    assert ran == [pick, pick]


def test_a_weight_given_as_its_transpose_has_its_own_pair_key(auto, rng):
    """linear_backward with PyTorch's weight.T runs dx's GEMM on the weight untransposed:
    its pair is measured and recorded under a key of its own, not the (in, out) one's."""
    x = rng.standard_normal((70, 50)).astype(np.float32)
    weight = rng.standard_normal((40, 50)).astype(np.float32)  # (out, in)
    dy = rng.standard_normal((70, 40)).astype(np.float32)
    dx, dw, _ = K.linear_backward(dy, x, weight.T, None)
    assert_close(dx, dy.astype(np.float64) @ weight, 1e-5, what="dx")
    assert_close(dw, x.T.astype(np.float64) @ dy, 1e-5, what="dw")
    keys = K.impl_choices()
    assert K.linear_backward_shape_class(np.float32, 70, 50, 40, trans_w=True) in keys
    assert K.linear_backward_shape_class(np.float32, 70, 50, 40) not in keys


def test_unreadable_cache_is_measured_again(auto, rng):
    (auto / os.path.basename(_autotune.cache_path())).write_text("{not json")
    a, b = operands(rng)
    K.matmul(a, b)
    assert K.gemm_shape_class("matmul", np.float32, 70, 40, 50) in K.impl_choices()


@pytest.mark.parametrize("impl", ["numba", "blas"])
def test_argument_and_environment_choose_without_measuring(auto, rng, monkeypatch, impl):
    monkeypatch.setattr(_autotune, "measure", no_measuring)
    a, b = operands(rng)
    ref = a.astype(np.float64) @ b
    assert_close(K.matmul(a, b, impl=impl), ref, 1e-5, what=f"impl={impl}")
    monkeypatch.setenv("KERNELGRAD_IMPL", impl)
    assert_close(K.matmul(a, b), ref, 1e-5, what=f"KERNELGRAD_IMPL={impl}")
    # The argument beats the environment variable.
    other = "blas" if impl == "numba" else "numba"
    assert_close(K.matmul(a, b, impl=other), ref, 1e-5, what=f"impl={other} over env")
    x, w = operands(rng)
    assert_close(K.linear(x, w, None, "relu"), np.maximum(x.astype(np.float64) @ w, 0), 1e-5,
                 what=f"linear KERNELGRAD_IMPL={impl}")
    assert K.impl_choices() == {}


def test_forget_drops_choices(auto, rng):
    a, b = operands(rng)
    K.matmul(a, b)
    assert K.impl_choices()
    K.forget_impl_choices()
    assert K.impl_choices() == {}
    assert not os.path.exists(_autotune.cache_path())


def test_bad_impl_names(auto, rng, monkeypatch):
    a, b = operands(rng)
    with pytest.raises(ValueError, match="impl is 'cublas'; on cpu choose one of"):
        K.matmul(a, b, impl="cublas")
    with pytest.raises(ValueError, match="impl is 'fast'"):
        K.linear(a, b, impl="fast")
    monkeypatch.setenv("KERNELGRAD_IMPL", "gpu")
    with pytest.raises(ValueError, match="environment variable KERNELGRAD_IMPL is 'gpu'"):
        K.matmul(a, b)


def test_a_noisy_or_loaded_measurement_is_not_recorded(auto, rng, monkeypatch):
    """Rounds that disagree (or a busy machine) give a choice for this process only, held
    RETRY_SECONDS and then measured again."""
    monkeypatch.setattr(_autotune, "NOISE", 0.25)
    calls = []

    def noisy(candidates):
        calls.append(1)
        results = {name: fn() for name, fn in candidates.items()}
        return {"numba": [1.0, 1.0, 2.5], "blas": [2.0, 2.1, 2.0]}, 0.0, results
    monkeypatch.setattr(_autotune, "measure", noisy)
    a, b = operands(rng)
    K.matmul(a, b)
    K.matmul(a, b)
    # held, reported as provisional, not recorded on disk, not re-measured
    assert len(calls) == 1 and not _autotune._load()
    (held,) = K.impl_choices().values()
    assert held["impl"] == "numba" and held["provisional"]
    monkeypatch.setattr(_autotune, "RETRY_SECONDS", 0.0)
    K.matmul(a, b)
    assert len(calls) == 2  # stale: measured again


def test_a_clear_win_is_recorded_however_noisy():
    assert _autotune.settled({"numba": [1.0, 1.9], "blas": [2.0, 4.0]}, "numba")
    assert not _autotune.settled({"numba": [1.0, 2.1], "blas": [2.0, 4.0]}, "numba")
    assert _autotune.settled({"numba": [1.0, 1.1], "blas": [1.05, 1.1]}, "numba")


def test_candidates_are_timed_between_numba_kernels(auto, monkeypatch):
    order = []
    monkeypatch.setattr(_autotune, "_neighbour", lambda: order.append("numba kernel"))
    rounds, load, results = _autotune.measure(
        {"numba": lambda: order.append("numba") or 1, "blas": lambda: order.append("blas") or 2})
    assert results == {"numba": 1, "blas": 2} and set(rounds) == {"numba", "blas"}
    timed = order[2:]  # after each candidate's first (compiling) run
    for i, name in enumerate(timed):
        if name in ("numba", "blas"):
            assert timed[i - 1] == timed[i + 1] == "numba kernel"
