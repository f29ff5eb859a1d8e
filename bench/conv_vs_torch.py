"""PyTorch reference for bench/bench_conv.cpp: the same conv2d layers and the
same target network, at the same thread count.

    OMP_NUM_THREADS=2 .venv/bin/python bench/conv_vs_torch.py
    OMP_NUM_THREADS=2 build/bench_conv

conv2d forward and forward+backward GFLOP/s (torch.nn.functional.conv2d,
float32, median of repeated timings; forward FLOPs 2*N*OC*OH*OW*C*KH*KW,
backward the same again for dW and, when x needs a gradient, for dx), then
the target CNN's training step (forward, backward, SGD) in images per second.
"""
import os
import statistics
import time

import torch
import torch.nn.functional as F

LAYERS = [
    # name, N, C, H, W, OC, K, stride, pad, x needs grad
    ("net conv1 64x1x28x28 k5 1->16 p2", 64, 1, 28, 28, 16, 5, 1, 2, False),
    ("net conv2 64x16x14x14 k5 16->32 p2", 64, 16, 14, 14, 32, 5, 1, 2, True),
    ("64x32x14x14 k3 32->64 p1", 64, 32, 14, 14, 64, 3, 1, 1, True),
    ("64x64x14x14 k1 64->64", 64, 64, 14, 14, 64, 1, 1, 0, True),
    ("64x32x28x28 k3 32->64 s2 p1", 64, 32, 28, 28, 64, 3, 2, 1, True),
    ("1x16x14x14 k5 16->32 p2 (batch 1)", 1, 16, 14, 14, 32, 5, 1, 2, True),
]


def bench_layer(n, c, h, w, oc, k, stride, pad, x_grad, reps):
    x = torch.rand(n, c, h, w) * 2 - 1
    x.requires_grad_(x_grad)
    wt = ((torch.rand(oc, c, k, k) * 2 - 1) * 0.1).requires_grad_()
    b = ((torch.rand(oc) * 2 - 1) * 0.1).requires_grad_()
    fwd, fb = [], []
    for r in range(-2, reps):
        t0 = time.perf_counter()
        with torch.no_grad():
            F.conv2d(x, wt, b, stride=stride, padding=pad)
        t_f = time.perf_counter() - t0
        t0 = time.perf_counter()
        y = F.conv2d(x, wt, b, stride=stride, padding=pad)
        y.backward(torch.ones_like(y))
        t_fb = time.perf_counter() - t0
        wt.grad = b.grad = x.grad = None
        if r >= 0:
            fwd.append(t_f)
            fb.append(t_fb)
    return statistics.median(fwd), statistics.median(fb)


def bench_network(batch, steps):
    torch.manual_seed(2)

    def u(shape, s):
        return ((torch.rand(shape) * 2 - 1) * s).requires_grad_()

    params = [u((16, 1, 5, 5), 0.2), u((16,), 0), u((32, 16, 5, 5), 0.05), u((32,), 0),
              u((128, 1568), 0.025), u((128,), 0), u((10, 128), 0.09), u((10,), 0)]
    c1w, c1b, c2w, c2b, d1w, d1b, d2w, d2b = params
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    times = []
    for s in range(-3, steps):
        t0 = time.perf_counter()
        h = F.max_pool2d(F.relu(F.conv2d(x, c1w, c1b, padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, c2w, c2b, padding=2)), 2)
        h = F.relu(F.linear(h.flatten(1), d1w, d1b))
        loss = F.cross_entropy(F.linear(h, d2w, d2b), y)
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.01 * p.grad
        if s >= 0:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    print(f"conv_vs_torch: PyTorch {torch.__version__}, float32, {torch.get_num_threads()} "
          f"thread(s) (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})\n")
    print(f"{'conv2d layer':38} {'fwd ms':>9} {'fwd GF/s':>9} {'f+b ms':>9} {'f+b GF/s':>9}")
    for name, n, c, h, w, oc, k, stride, pad, x_grad in LAYERS:
        oh = (h + 2 * pad - k) // stride + 1
        ow = (w + 2 * pad - k) // stride + 1
        flops = 2.0 * n * oc * oh * ow * c * k * k
        reps = min(400, max(10, int(2e9 / flops)))
        t_f, t_fb = bench_layer(n, c, h, w, oc, k, stride, pad, x_grad, reps)
        fb_flops = flops * (3 if x_grad else 2)
        print(f"{name:38} {t_f * 1e3:9.3f} {flops / t_f * 1e-9:9.1f} {t_fb * 1e3:9.3f} "
              f"{fb_flops / t_fb * 1e-9:9.1f}", flush=True)
    batch = 64
    step = bench_network(batch, 60)
    print(f"\ntarget CNN, batch {batch}, forward + backward + SGD: {step * 1e3:.2f} ms per step, "
          f"{batch / step:.0f} img/s")


if __name__ == "__main__":
    main()
