"""One MLP training step on the GPU, kernelgrad's CUDA kernels against PyTorch eager:
batch 4096, 1024 -> 4096 -> 4096 -> 1000, ReLU, dropout 0.1, softmax cross-entropy
(mean), Adam; the issue's shape. Our step calls the kernel API directly (linear with its
fused epilogue, dropout, fused softmax cross-entropy, linear_backward, fused Adam), all
on CuPy's current stream with no host synchronization. Both steps start from the same
weights; the check compares the losses of the first step."""
import numpy as np

import kernelgrad.kernels as K

from .backend import Backend

# batch and layer widths: the full step, and the tiny one that checks the harness runs
SIZES = {False: (4096, (1024, 4096, 4096, 1000)), True: (64, (32, 64, 64, 10))}


def _cp():
    import cupy
    return cupy

P = 0.1
F32 = np.float32


def _weights(rng, sizes):
    return [((rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(F32),
             np.zeros(n_out, F32)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]


class OurStep:
    def __init__(self, weights, x, labels):
        cp = _cp()
        self.params = [cp.asarray(a) for wb in weights for a in wb]
        self.m = [cp.zeros_like(p) for p in self.params]
        self.v = [cp.zeros_like(p) for p in self.params]
        self.x, self.labels, self.t = cp.asarray(x), cp.asarray(labels), 0

    def __call__(self):
        self.t += 1
        (w1, b1, w2, b2, w3, b3), seed = self.params, self.t
        h1 = K.linear(self.x, w1, b1, "relu")
        d1 = K.dropout(h1, P, seed, 0)
        h2 = K.linear(d1, w2, b2, "relu")
        d2 = K.dropout(h2, P, seed, 1 << 40)
        logits = K.linear(d2, w3, b3)
        losses, dlogits = K.softmax_cross_entropy(logits, self.labels)
        dlogits *= F32(1 / len(self.x))  # the mean's gradient
        dd2, dw3, db3 = K.linear_backward(dlogits, d2, w3, logits)
        dd1, dw2, db2 = K.linear_backward(K.dropout_backward(dd2, P, seed, 1 << 40), d1, w2, h2,
                                          "relu")
        _, dw1, db1 = K.linear_backward(K.dropout_backward(dd1, P, seed, 0), self.x, w1, h1,
                                        "relu", need_input_grad=False)
        for p, g, m, v in zip(self.params, (dw1, db1, dw2, db2, dw3, db3), self.m, self.v):
            K.adam_step(p, g, m, v, lr=1e-3, step=self.t)
        return losses.mean()


def torch_step(torch, weights, x, labels):
    layers = []
    for i, (w, b) in enumerate(weights):
        lin = torch.nn.Linear(*w.shape).cuda()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(w.T))
            lin.bias.copy_(torch.as_tensor(b))
        layers.append(lin)
        if i < len(weights) - 1:
            layers += [torch.nn.ReLU(), torch.nn.Dropout(P)]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.as_tensor(x, device="cuda"), torch.as_tensor(labels, device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return loss
    return step


def run(flop_rate, tiny=False):
    backend = Backend("cuda")
    torch, gpu_time = backend.torch, lambda fn, repeats: backend.time(fn, repeats).median
    batch, sizes = SIZES[tiny]
    rng = np.random.default_rng(0)
    weights = _weights(rng, sizes)
    x = rng.standard_normal((batch, sizes[0])).astype(F32)
    labels = rng.integers(0, sizes[-1], batch)
    ours = OurStep(weights, x, labels)
    flops = 6 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    row = {"step": f"MLP {'-'.join(map(str, sizes))}, batch {batch}, ReLU, dropout {P}, Adam"}
    first = float(ours())
    K.check_device_errors()
    row.update(first_loss=first, ours_s=gpu_time(ours, repeats=10))
    row["gemm_roofline"] = flops / row["ours_s"] / flop_rate
    status = "ok" if np.isfinite(first) and abs(first - np.log(sizes[-1])) < 1.0 else "FAIL"
    if torch is not None:
        step = torch_step(torch, weights, x, labels)
        row["torch_first_loss"] = float(step().detach())
        row["torch_s"] = gpu_time(step, repeats=10)
        row["ratio"] = row["torch_s"] / row["ours_s"]
        if abs(row["torch_first_loss"] - first) > 0.02 * first:  # dropout masks differ
            status = "FAIL"
    row["status"] = status
    print(f"\n{row['step']}: ours {row['ours_s'] * 1e3:.2f} ms "
          f"({row['gemm_roofline'] * 100:.0f}% of cuBLAS SGEMM rate on its FLOPs)"
          + (f", PyTorch eager {row['torch_s'] * 1e3:.2f} ms, ratio {row['ratio']:.2f}x"
             if torch is not None else ", no PyTorch to compare")
          + f"; first loss {first:.4f} [{status}]")
    return [row]
