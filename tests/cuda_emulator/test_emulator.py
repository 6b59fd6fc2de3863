"""The CUDA emulator (tests/cuda_emulator) catches what it claims to: each test runs a
small broken kernel and expects the error that names the bug. Then the GPU tests (every
test marked `gpu`) and `python -m bench --device cuda --tiny` run on it, each in a
subprocess that installs the CuPy stand-in before anything imports cupy."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from kernelgrad.kernels._spec import cuda_defines
from kernelgrad.kernels.cuda import _module

import cuda_emulator as emulator

pytestmark = pytest.mark.skipif(not emulator.available(), reason="needs g++")

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMMON = cuda_defines() + (_module.SOURCE_DIR / "common.cuh").read_text()
PTX = "// begin ptx.cuh\n// end ptx.cuh\n"  # replaced by the emulator's ptx.h


@pytest.fixture(scope="module")
def shim():
    """The CuPy stand-in's arrays and launches, without installing it as `cupy`."""
    from cuda_emulator import cupy_shim
    return cupy_shim


def launch(shim, source, kernel, grid, block, *args, shared_mem=0):
    module = emulator.Module(COMMON + PTX + source, [kernel])
    shim._Function(module, kernel)(grid, block, args, shared_mem=shared_mem)


COPY = """
extern "C" __global__ void copy(const float* x, float* y, int n, int shift) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i + shift];
}
"""


def test_a_correct_kernel_runs(shim):
    x = shim.asarray(np.arange(100, dtype=np.float32))
    y = shim.empty(100)
    launch(shim, COPY, "copy", (4,), (32,), x, y, np.int32(100), np.int32(0))
    np.testing.assert_array_equal(y.get(), np.arange(100))


@pytest.mark.parametrize("place, shift, where", [
    ("end", 1, "byte 400 of a 400-byte array .past its end."),
    ("start", -1, "byte -4 of a 400-byte array .before its start."),
])
def test_a_read_outside_an_array_faults(shim, monkeypatch, place, shift, where):
    monkeypatch.setenv(shim.PLACE_VARIABLE, place)
    x, y = shim.zeros(100), shim.empty(100)
    with pytest.raises(emulator.EmulatorError, match=f"memory fault at {where}"):
        launch(shim, COPY, "copy", (4,), (32,), x, y, np.int32(100), np.int32(shift))


@pytest.mark.parametrize("place", ["end", "start"])
def test_a_write_beside_an_array_is_caught(shim, monkeypatch, place):
    # 5 floats: 16-byte alignment leaves 12 bytes between the array and its guard page
    monkeypatch.setenv(shim.PLACE_VARIABLE, place)
    x, y = shim.zeros(6), shim.empty(5)
    with pytest.raises(emulator.EmulatorError, match="copy wrote outside a 20-byte array"):
        launch(shim, COPY, "copy", (1,), (32,), x, y, np.int32(6), np.int32(0))


def test_a_read_beside_an_array_reads_nan(shim):
    x, y = shim.zeros(5), shim.empty(6)
    launch(shim, COPY, "copy", (1,), (32,), x, y, np.int32(6), np.int32(0))
    assert np.isnan(y.get()[5]) and not np.isnan(y.get()[:5]).any()


@pytest.mark.parametrize("grid, block, message", [
    ((1, 65536), (32,), r"grid \(1, 65536, 1\) is outside CUDA's limits"),
    ((0,), (32,), r"grid \(0, 1, 1\) is outside"),
    ((1,), (64, 32), r"block \(64, 32, 1\) has more than 1024 threads"),
])
def test_a_launch_past_cudas_limits_is_refused(shim, grid, block, message):
    x, y = shim.zeros(4), shim.empty(4)
    with pytest.raises(emulator.EmulatorError, match=message):
        launch(shim, COPY, "copy", grid, block, x, y, np.int32(4), np.int32(0))


@pytest.mark.parametrize("args, message", [
    ((np.int64(100), np.int32(0)), "argument 2 is 8 bytes wide, the kernel's parameter 4"),
    ((np.int32(100),), "the kernel takes 4 arguments, the launch passed 3"),
])
def test_arguments_are_checked_against_the_parameters(shim, args, message):
    x, y = shim.zeros(100), shim.empty(100)
    with pytest.raises(emulator.EmulatorError, match=message):
        launch(shim, COPY, "copy", (4,), (32,), x, y, *args)


def test_host_arrays_and_python_numbers_are_refused(shim):
    x, y = shim.zeros(100), shim.empty(100)
    with pytest.raises(emulator.EmulatorError, match="argument 0 is a NumPy .host. array"):
        launch(shim, COPY, "copy", (4,), (32,), np.zeros(100, np.float32), y,
               np.int32(100), np.int32(0))
    with pytest.raises(emulator.EmulatorError, match="argument 2 is a Python int"):
        launch(shim, COPY, "copy", (4,), (32,), x, y, 100, np.int32(0))


def test_a_compiler_warning_fails_the_build(shim):
    source = """
    extern "C" __global__ void sloppy(float* y, int n) {
        for (unsigned i = threadIdx.x; i < n; i += blockDim.x) y[i] = 0.0f;  // sign mixing
    }
    """
    with pytest.raises(emulator.EmulatorError, match="Werror=sign-compare"):
        launch(shim, source, "sloppy", (1,), (32,), shim.empty(4), np.int32(4))


def test_divergent_syncthreads_are_reported(shim):
    source = """
    extern "C" __global__ void diverge(float* y) {
        if (threadIdx.x < 16) {
            __syncthreads();
        } else {
            __syncthreads();
        }
        y[threadIdx.x] = 1.0f;
    }
    """
    with pytest.raises(emulator.EmulatorError, match="threads wait at different __syncthreads"):
        launch(shim, source, "diverge", (1,), (64,), shim.empty(64))


def test_a_shuffle_with_an_exited_lane_is_reported(shim):
    source = """
    extern "C" __global__ void reduce(const float* x, float* y) {
        if (threadIdx.x == 3) return;
        float v = warp_sum(x[threadIdx.x]);
        if (threadIdx.x == 0) y[0] = v;
    }
    """
    with pytest.raises(emulator.EmulatorError, match="for lane 3, which has exited"):
        launch(shim, source, "reduce", (1,), (32,), shim.zeros(32), shim.empty(1))


def test_warp_shuffles_and_barriers_compute_a_block_sum(shim):
    source = """
    extern "C" __global__ void block_sum(const float* x, float* y, int n) {
        __shared__ float part[32];
        float v = 0.0f;
        for (int i = threadIdx.x; i < n; i += blockDim.x) v += x[i];
        v = warp_sum(v);
        if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
        __syncthreads();
        if (threadIdx.x < 32) {
            v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.0f;
            v = warp_sum(v);
            if (threadIdx.x == 0) y[blockIdx.x] = v;
        }
    }
    """
    x = np.arange(1000, dtype=np.float32)
    y = shim.empty(2)
    launch(shim, source, "block_sum", (2,), (256,), shim.asarray(x), y, np.int32(1000))
    np.testing.assert_array_equal(y.get(), [x.sum()] * 2)


# Reads its cp.async copy without waiting for it: right only when copies land at once.
UNWAITED = """
extern "C" __global__ void unwaited(const float* x, float* y) {
    extern __shared__ __align__(16) float tile[];
    cp_async16(tile + 4 * threadIdx.x, x + 4 * threadIdx.x, 16);
    cp_async_commit();
    __syncthreads();  // a barrier is not a wait_group: the copy may still be in flight
    y[threadIdx.x] = tile[4 * threadIdx.x];
    cp_async_wait<0>();
}
"""


def test_late_copies_expose_a_missing_wait(shim, monkeypatch):
    x = shim.asarray(np.arange(128, dtype=np.float32))
    y = shim.empty(32)
    launch(shim, UNWAITED, "unwaited", (1,), (32,), x, y, shared_mem=512)
    np.testing.assert_array_equal(y.get(), np.arange(0, 128, 4))
    monkeypatch.setenv(emulator.COPIES_VARIABLE, "late")
    launch(shim, UNWAITED, "unwaited", (1,), (32,), x, y, shared_mem=512)
    assert np.isnan(y.get()).all()  # the tile still holds its uninitialized NaN bytes


def test_reverse_order_exposes_a_missing_barrier(shim, monkeypatch):
    source = """
    extern "C" __global__ void shift(const float* x, float* y) {
        extern __shared__ float s[];
        s[threadIdx.x] = x[threadIdx.x];
        // missing __syncthreads(): thread t reads what thread t - 1 wrote
        if (threadIdx.x > 0) y[threadIdx.x] = s[threadIdx.x - 1];
    }
    """
    x = shim.asarray(np.arange(64, dtype=np.float32))
    y = shim.zeros(64)
    launch(shim, source, "shift", (1,), (64,), x, y, shared_mem=256)
    np.testing.assert_array_equal(y.get()[1:], np.arange(63))  # first to last: hidden
    monkeypatch.setenv(emulator.ORDER_VARIABLE, "reverse")
    launch(shim, source, "shift", (1,), (64,), x, y, shared_mem=256)
    assert np.isnan(y.get()[1:]).all()


# A block-per-row reduction whose partials are rewritten for the next row with no barrier
# after the last read of them: the first warp to finish a row overwrites a partial that a
# later warp has yet to read.
ROW_SUMS = """
extern "C" __global__ void row_sums(const float* x, float* y, int rows) {
    __shared__ float part[32];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (int r = 0; r < rows; ++r) {
        float v = warp_sum(x[r * blockDim.x + threadIdx.x]);
        if (lane == 0) part[warp] = v;
        __syncthreads();
        float s = lane < warps ? part[lane] : 0.0f;
        s = warp_sum(s);
        if (threadIdx.x == 0) y[r] = s;
        BARRIER
    }
}
"""


def test_warps_running_one_at_a_time_expose_a_missing_trailing_barrier(shim, monkeypatch):
    # last warp first: it rewrites its partial before warp 0, which writes y, has read it
    monkeypatch.setenv(emulator.ORDER_VARIABLE, "reverse")
    x = np.random.default_rng(0).integers(0, 9, (4, 128)).astype(np.float32)
    y = shim.empty(4)
    launch(shim, ROW_SUMS.replace("BARRIER", "__syncthreads();"), "row_sums", (1,), (128,),
           shim.asarray(x), y, np.int32(4))
    np.testing.assert_array_equal(y.get(), x.sum(axis=1))
    launch(shim, ROW_SUMS.replace("BARRIER", ""), "row_sums", (1,), (128,), shim.asarray(x), y,
           np.int32(4))
    assert not np.array_equal(y.get(), x.sum(axis=1))


def test_every_block_starts_with_uninitialized_shared_memory(shim):
    source = """
    extern "C" __global__ void leftover(float* y) {
        __shared__ float seen[2], unused;
        if (threadIdx.x == 0) {
            y[blockIdx.x] = seen[1];  // block 0 wrote it; block 1 must not see that
            seen[1] = 1.0f;
            y[2 + blockIdx.x] = unused;
        }
    }
    """
    y = shim.zeros(4)
    launch(shim, source, "leftover", (2,), (32,), y)
    assert np.isnan(y.get()).all()


def test_dynamic_shared_memory_over_the_limit_is_refused(shim):
    x, y = shim.zeros(128), shim.empty(32)
    with pytest.raises(emulator.EmulatorError, match="over the 49152 this kernel was allowed"):
        launch(shim, UNWAITED, "unwaited", (1,), (32,), x, y, shared_mem=64 * 1024)


def run_gpu_tests(place, copies, order, sizes, select=None, **env_extra):
    """Every CUDA kernel against the reference, through the real launchers (all but the
    CUDA-graph capture, which has nothing to emulate); `select` as pytest's -k."""
    env = dict(os.environ, KERNELGRAD_CUDA_EMULATOR="1", KERNELGRAD_GPU_TESTS=sizes,
               **env_extra)
    env[emulator.COPIES_VARIABLE] = copies
    env["KERNELGRAD_CUDA_EMULATOR_PLACE"] = place
    env[emulator.ORDER_VARIABLE] = order
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests"]
        + ([] if select is None else ["-k", select]),
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and " failed" not in done.stdout


# Overruns fault, copies land at once, threads run first to last, small sizes (40 s);
# then underruns fault, copies land only at their wait_group, threads run last to first,
# every size (the 1024-thread softmax rows, 1M-element arrays; 3 minutes): two runs cover
# both sides of every array, both cp.async hazards and both orders of unsynchronized
# threads.
@pytest.mark.parametrize("place, copies, order, sizes", [
    ("end", "early", "forward", "small"),
    pytest.param("start", "late", "reverse", "all", marks=pytest.mark.slow)])
def test_the_gpu_tests_pass_on_the_emulator(place, copies, order, sizes):
    run_gpu_tests(place, copies, order, sizes)


def test_the_tensor_core_gemm_fits_an_sm86_sized_device():
    """sm_86, sm_89 and sm_120 allow 101,376 B of shared memory per block, less than the
    3-stage pipeline's 110,592: posing as one, the launcher must take the 2-stage build
    (the emulator refuses a kernel opted in past the limit) and get the same results."""
    run_gpu_tests("end", "early", "forward", "small", select="tf32 or pipeline",
                  KERNELGRAD_CUDA_EMULATOR_SHARED="101376")


def test_the_optimizers_with_contracted_multiply_adds():
    """NVCC contracts a * b + c into one rounding; the emulator's default build does not.
    Built as NVCC builds, the optimizer kernels must still pass (centred RMSprop's
    variance, which contraction makes negative on a nearly constant gradient, above all)."""
    run_gpu_tests("end", "early", "forward", "small", select="rmsprop or adam or optim",
                  KERNELGRAD_CUDA_EMULATOR_FMA="1")


def test_the_gpu_benchmark_runs_on_the_emulator(tmp_path):
    """`python -m bench --device cuda --tiny` end to end: every case checked against the
    reference (a failed check exits 1), the MLP step, the results file; so a GPU session
    does not spend its time on a harness bug. The timings mean nothing here."""
    script = ("import sys\n"
              "from cuda_emulator import cupy_shim\n"
              "cupy_shim.install()\n"
              "from bench.__main__ import main\n"
              "sys.exit(main(['--device', 'cuda', '--tiny', '--out', "
              f"{str(tmp_path / 'r.json')!r}]))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "FAIL" not in done.stdout and "first loss" in done.stdout
    assert (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_the_gpu_check_rehearses_on_the_emulator(tmp_path):
    """tools/gpu_check.sh end to end with the emulator for the GPU: every step runs, at
    most 8 files come out, and the summary table is the last thing printed."""
    done = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh"), str(tmp_path),
                           "--rehearse"], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) <= 8 and (tmp_path / "summary.txt").exists()
    summary = (tmp_path / "summary.txt").read_text().strip()
    assert done.stdout.strip().endswith(summary.splitlines()[-1])
    assert "tests      ok" in summary and "bench      ok" in summary
