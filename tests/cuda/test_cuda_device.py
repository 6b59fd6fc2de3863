"""What holds for every CUDA kernel: one device per call, float32 only, and no host
synchronization anywhere in a training step (it records into a CUDA graph)."""
import numpy as np
import pytest

import kernelgrad.kernels as K

from conftest import CUDA, EMULATED, gpu_test, on_device, to_host

if CUDA:
    import cupy as cp

F32 = np.float32


@gpu_test
def test_mixed_devices_are_an_error(rng):
    a = rng.standard_normal((4, 4)).astype(F32)
    with pytest.raises(RuntimeError, match="different devices"):
        K.matmul(on_device(a, "cuda"), a)


@gpu_test
def test_float64_on_gpu_is_rejected():
    with pytest.raises(TypeError, match="CUDA kernels take float32"):
        K.activation(cp.zeros(4, cp.float64), "relu")


@gpu_test
@pytest.mark.skipif(EMULATED, reason="the CPU emulator has no CUDA graphs")
def test_a_training_step_is_captured_in_a_cuda_graph(rng):
    """No op synchronizes with the host: a forward+backward+Adam step records into a CUDA
    graph (capture fails on any synchronization) and replays to the eager result."""
    x = on_device(rng.standard_normal((256, 64)).astype(F32), "cuda")
    labels = cp.asarray(rng.integers(0, 10, 256))
    w1 = on_device((rng.standard_normal((64, 128)) / 8).astype(F32), "cuda")
    w2 = on_device((rng.standard_normal((128, 10)) / 11).astype(F32), "cuda")
    b1, b2 = cp.zeros(128, cp.float32), cp.zeros(10, cp.float32)
    params = [w1, b1, w2, b2]
    state = [(cp.zeros_like(p), cp.zeros_like(p)) for p in params]

    def step():
        h = K.linear(x, w1, b1, "relu", impl="cuda-regblock")
        d = K.dropout(h, 0.1, 5, 0)
        logits = K.linear(d, w2, b2, impl="cuda-regblock")
        losses, dlogits = K.softmax_cross_entropy(logits, labels)
        dd, dw2, db2 = K.linear_backward(dlogits, d, w2, logits, impl="cuda-regblock")
        _, dw1, db1 = K.linear_backward(K.dropout_backward(dd, 0.1, 5, 0), x, w1, h, "relu",
                                        need_input_grad=False, impl="cuda-regblock")
        for p, g, (m, v) in zip(params, (dw1, db1, dw2, db2), state):
            K.adam_step(p, g, m, v, lr=1e-3, step=1)
        return losses

    snapshot = [p.copy() for p in params]
    eager = step()  # also compiles every kernel and fills CuPy's memory pool
    eager_params = [p.copy() for p in params]
    for p, s in zip(params, snapshot):
        p[...] = s
    for m, v in state:
        m.fill(0)
        v.fill(0)
    # The resets above run on the legacy default stream, which a non-blocking stream does
    # not wait for: without this the graph can read parameters the resets have not yet
    # written (seen under compute-sanitizer, which slows every launch).
    cp.cuda.Device().synchronize()
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        captured = step()
        graph = stream.end_capture()
        graph.launch()
    stream.synchronize()
    np.testing.assert_allclose(to_host(captured), to_host(eager), rtol=1e-6)
    for got, want in zip(params, eager_params):
        np.testing.assert_allclose(to_host(got), to_host(want), rtol=1e-6)
