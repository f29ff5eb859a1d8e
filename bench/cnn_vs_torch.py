"""Fashion-MNIST CNN: lldl against PyTorch, side by side in one run.

The network of issue 4 (conv5x5 1->16 pad 2, ReLU, max-pool 2, conv5x5 16->32
pad 2, ReLU, max-pool 2, dense 1568->128 ReLU, dense 128->10, softmax
cross-entropy, Adam lr 1e-3, batch 64) is trained for a fixed number of
batches in each framework at 1 and 2 threads. Each configuration runs in its
own process with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS set,
so no BLAS keeps threads of its own.

    .venv/bin/python bench/cnn_vs_torch.py [--images 6400] [--threads 1 2]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import fashion_cnn  # noqa: E402

BATCH = 64


def load(n):
    import cppapi
    x, y = cppapi.load_fashion_mnist("train", limit=n)
    return x.reshape(n, 1, 28, 28), y


def run_lldl(n_images, threads):
    import cppapi as c
    c.set_num_threads(threads)
    x, y = load(n_images)
    nn = fashion_cnn.build()  # the example's network, so both measure the same model
    trainer = c.Trainer(nn, c.OptimiserType.Adam, 1e-3)
    trainer.fit(x[:BATCH * 4], y[:BATCH * 4], epochs=1, batch_size=BATCH, verbose=0)  # warm-up
    h = trainer.fit(x, y, epochs=1, batch_size=BATCH, restart=False, verbose=0)
    train = h["samples_per_s"][-1]
    t0 = time.perf_counter()
    nn.predict(x)
    infer = n_images / (time.perf_counter() - t0)
    return train, infer


def run_torch(n_images, threads):
    import torch
    import torch.nn as tnn
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = load(n_images)
    x, y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from vs_pytorch import torch_cnn_model
    model = torch_cnn_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = tnn.CrossEntropyLoss()

    def epoch(limit):
        perm = torch.randperm(limit)
        for i in range(0, limit, BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()

    epoch(BATCH * 4)  # warm-up
    t0 = time.perf_counter()
    epoch(n_images)
    train = n_images / (time.perf_counter() - t0)
    with torch.no_grad():
        t0 = time.perf_counter()
        for i in range(0, n_images, 1024):
            model(x[i:i + 1024])
        infer = n_images / (time.perf_counter() - t0)
    return train, infer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6400)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        fw, t = a.child[0], int(a.child[1])
        train, infer = (run_lldl if fw == "lldl" else run_torch)(a.images, t)
        print(json.dumps({"train": train, "infer": infer}))
        return
    rows = {}
    for t in a.threads:
        env = dict(os.environ, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t),
                   MKL_NUM_THREADS=str(t))
        for fw in ("lldl", "torch"):
            out = subprocess.run([sys.executable, __file__, "--images", str(a.images),
                                  "--child", fw, str(t)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            rows[(fw, t)] = json.loads(out.strip().splitlines()[-1])
    import torch
    print(f"Fashion-MNIST CNN, batch {BATCH}, {a.images} training images, torch {torch.__version__}")
    print(f"{'threads':>7} | {'lldl train':>10} {'torch train':>11} {'ratio':>6} | "
          f"{'lldl infer':>10} {'torch infer':>11} {'ratio':>6}   (images/s)")
    for t in a.threads:
        l, p = rows[("lldl", t)], rows[("torch", t)]
        print(f"{t:>7} | {l['train']:>10.0f} {p['train']:>11.0f} {l['train'] / p['train']:>6.2f} | "
              f"{l['infer']:>10.0f} {p['infer']:>11.0f} {l['infer'] / p['infer']:>6.2f}")
    best_torch = max(rows[("torch", t)]["train"] for t in a.threads)
    best_lldl = rows[("lldl", max(a.threads))]["train"]
    print(f"lldl at {max(a.threads)} threads / torch at its faster setting: "
          f"{best_lldl / best_torch:.2f}x (target >= 1.5x)")


if __name__ == "__main__":
    main()
