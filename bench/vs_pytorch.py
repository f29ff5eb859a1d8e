"""lldl against PyTorch on five workloads, side by side in one run.

    .venv/bin/python bench/vs_pytorch.py [--threads 1,2] [--only gpt,lstm] [--scale 1.0]
                                         [--json bench/out/vs_pytorch.json]

Workloads (the same model, batch and optimiser in both frameworks):
  diabetes  the seed's MLP: 10 -> 16 sigmoid -> 16 sigmoid -> 1, MSE, SGD lr 0.01,
            full batch (353 rows); training steps/s
  digits    64 -> 89 tanh -> 10, softmax cross-entropy, SGD lr 0.1, batch 32; steps/s
  cnn       the Fashion-MNIST CNN of issue 4, Adam lr 1e-3, batch 64, one epoch of
            the 60,000 training images (--scale 0.1067: the first 6,400); images/s
  lstm      char LSTM: embedding 64, hidden 256, seq 64, batch 32, AdamW; tokens/s
  gpt       char GPT: 4 layers, 4 heads, 128 wide, block 128, batch 16, AdamW; tokens/s

lldl is driven the way its users drive it (Trainer.fit for the seed's API,
the GPT/LSTM objects' loss/backward/step for the language models); PyTorch the
way its users write a training loop. The language models train on random
token windows over a 96-symbol vocabulary (throughput does not depend on the
text; bench/lm_vs_torch.py compares losses on real text).

Every (workload, framework, threads) runs in a process of its own with
OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS set, so no BLAS keeps
threads of its own, and its peak resident memory (ru_maxrss: interpreter,
libraries, data and model) is read at its end. The lldl process never imports
torch, the torch process never imports lldl. The ratio column compares lldl
and PyTorch each at its own faster thread setting.
"""
import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = {"diabetes": 5.0, "digits": None, "cnn": 1.5, "lstm": 1.2, "gpt": 1.2}
UNITS = {"diabetes": "steps/s", "digits": "steps/s", "cnn": "images/s", "lstm": "tokens/s",
         "gpt": "tokens/s"}
VOCAB = 96
FASHION = "/usr/share/datasets/fashion-mnist"


# ---- data, shared by both frameworks (numpy and scikit-learn only) ----------

def diabetes_data():
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    d = load_diabetes()
    x = StandardScaler().fit_transform(d.data.astype(np.float32)).astype(np.float32)
    y = d.target.astype(np.float32).reshape(-1, 1)
    xtr, _, ytr, _ = train_test_split(x, y, test_size=0.2, random_state=42)
    return np.ascontiguousarray(xtr), np.ascontiguousarray(ytr)


def digits_data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    d = load_digits()
    xtr, _, ytr, _ = train_test_split(d.data.astype(np.float32), d.target, test_size=0.2,
                                      random_state=42, stratify=d.target)
    xtr = StandardScaler().fit_transform(xtr).astype(np.float32)
    return np.ascontiguousarray(xtr), ytr.astype(np.int32)


def fashion_data(n):
    """The first n training images as float32 in [0, 1], (n, 1, 28, 28), and labels."""
    with gzip.open(os.path.join(FASHION, "train-images-idx3-ubyte.gz")) as f:
        img = np.frombuffer(f.read(), np.uint8, offset=16)
    with gzip.open(os.path.join(FASHION, "train-labels-idx1-ubyte.gz")) as f:
        lab = np.frombuffer(f.read(), np.uint8, offset=8)
    x = (img[:n * 784].astype(np.float32) / 255.0).reshape(n, 1, 28, 28)
    return x, lab[:n].astype(np.int32)


def timed_rate(step, batches, units_per_batch, warmup=2):
    """Runs step() on the first `warmup` batches untimed, then times the rest;
    returns units per second."""
    for b in batches[:warmup]:
        step(b)
    t0 = time.perf_counter()
    for b in batches[warmup:]:
        step(b)
    return (len(batches) - warmup) * units_per_batch / (time.perf_counter() - t0)


def token_batches(n, B, T, seed=0):
    rng = np.random.default_rng(seed)
    toks = rng.integers(0, VOCAB, size=(n, B, T + 1)).astype(np.int32)
    return [(np.ascontiguousarray(t[:, :-1]), np.ascontiguousarray(t[:, 1:])) for t in toks]


# ---- lldl -------------------------------------------------------------------

def lldl_seed_mlp(kind, steps):
    import cppapi as c
    L, A = c.LayerType, c.ActivationType
    if kind == "diabetes":
        x, y = diabetes_data()
        layers = [c.Layer2(L.Dense, 16, A.Sigmoid), c.Layer2(L.Dense, 16, A.Sigmoid),
                  c.Layer2(L.Dense, 1, A.Linear)]
        nn = c.NeuralNetwork2(layers, c.LossType.MSE)
        trainer, batch, lr = c.Trainer(nn, c.OptimiserType.SGD, 0.01), len(x), 0.01
    else:
        x, y = digits_data()
        layers = [c.Layer2(L.Dense, 89, A.Tanh), c.Layer2(L.Dense, 10, A.Softmax)]
        nn = c.NeuralNetwork2(layers, c.LossType.CROSS_ENTROPY)
        trainer, batch = c.Trainer(nn, c.OptimiserType.SGD, 0.1), 32
    per_epoch = -(-len(x) // batch)
    epochs = max(1, steps // per_epoch)
    trainer.fit(x, y, epochs=2, eval_every=2, batch_size=batch, verbose=0)  # build, warm up
    t0 = time.perf_counter()
    trainer.fit(x, y, epochs=epochs, eval_every=epochs, batch_size=batch, restart=False, verbose=0)
    return epochs * per_epoch / (time.perf_counter() - t0)


def lldl_cnn(images):
    import cppapi as c
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    import fashion_cnn
    x, y = fashion_data(images)
    nn = fashion_cnn.build()
    trainer = c.Trainer(nn, c.OptimiserType.Adam, 1e-3)
    trainer.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)  # build, warm up
    # fit() ends each epoch with a pass over the training set for its accuracy
    # (here as long as a quarter of the epoch), which the PyTorch loop does
    # not do: its history's samples_per_s is the training time alone.
    h = trainer.fit(x, y, epochs=1, batch_size=64, restart=False, verbose=0)
    return h["samples_per_s"][-1]


def lldl_lm(kind, steps):
    import cppapi as c
    if kind == "gpt":
        m = c.GPT(c.GPTConfig(VOCAB, 128, 4, 4, 128))
        B, T, lr = 16, 128, 1e-3
    else:
        m = c.LSTM(c.LSTMConfig(VOCAB, 64, 256))
        B, T, lr = 32, 64, 2e-3
    m.configure_optimizer(lr=lr, weight_decay=0.1, betas=(0.9, 0.99), eps=1e-8)
    batches = token_batches(steps + 2, B, T)

    def step(xy):
        m.loss(*xy)
        m.backward()
        m.clip_grad_norm(1.0)
        m.step(lr)
        m.zero_grad()

    return timed_rate(step, batches, B * T)


# ---- PyTorch ----------------------------------------------------------------

def torch_seed_mlp(kind, steps):
    import torch
    import torch.nn as tnn
    torch.manual_seed(0)
    if kind == "diabetes":
        x, y = diabetes_data()
        model = tnn.Sequential(tnn.Linear(10, 16), tnn.Sigmoid(), tnn.Linear(16, 16), tnn.Sigmoid(),
                               tnn.Linear(16, 1))
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        loss_fn, batch, lr = tnn.MSELoss(), len(x), 0.01
    else:
        x, y = digits_data()
        model = tnn.Sequential(tnn.Linear(64, 89), tnn.Tanh(), tnn.Linear(89, 10))
        x, y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
        loss_fn, batch, lr = tnn.CrossEntropyLoss(), 32, 0.1
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    per_epoch = -(-len(x) // batch)
    epochs = max(1, steps // per_epoch)

    def epoch():
        perm = torch.randperm(len(x)) if batch < len(x) else None
        for i in range(0, len(x), batch):
            xb, yb = (x, y) if perm is None else (x[perm[i:i + batch]], y[perm[i:i + batch]])
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()

    epoch()
    epoch()
    t0 = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return epochs * per_epoch / (time.perf_counter() - t0)


def torch_cnn_model():
    """Issue 4's Fashion-MNIST network in PyTorch (bench/cnn_vs_torch.py uses it too)."""
    import torch.nn as tnn
    return tnn.Sequential(
        tnn.Conv2d(1, 16, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(16, 32, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(1568, 128), tnn.ReLU(), tnn.Linear(128, 10))


def torch_cnn(images):
    import torch
    import torch.nn as tnn
    torch.manual_seed(0)
    x, y = fashion_data(images)
    x, y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    model = torch_cnn_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = tnn.CrossEntropyLoss()

    def epoch(limit):
        perm = torch.randperm(limit)
        for i in range(0, limit, 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()

    epoch(256)
    t0 = time.perf_counter()
    epoch(images)
    return images / (time.perf_counter() - t0)


def torch_lm(kind, steps):
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, HERE)
    from lm_vs_torch import TorchGPT, TorchLSTM
    g = torch.Generator().manual_seed(0)
    rand = lambda *s: torch.randn(*s, generator=g) * 0.02  # noqa: E731
    if kind == "gpt":
        C, L, H, blk = 128, 4, 4, 128
        P = {"wte.weight": rand(VOCAB, C), "wpe.weight": rand(blk, C),
             "ln_f.weight": torch.ones(C), "ln_f.bias": torch.zeros(C)}
        for i in range(L):
            for ln in ("ln_1", "ln_2"):
                P[f"h.{i}.{ln}.weight"], P[f"h.{i}.{ln}.bias"] = torch.ones(C), torch.zeros(C)
            for name, (fi, fo) in {"attn.c_attn": (C, 3 * C), "attn.c_proj": (C, C),
                                   "mlp.c_fc": (C, 4 * C), "mlp.c_proj": (4 * C, C)}.items():
                P[f"h.{i}.{name}.weight"], P[f"h.{i}.{name}.bias"] = rand(fi, fo), torch.zeros(fo)
        model, B, T, lr = TorchGPT(P, L, H), 16, 128, 1e-3
    else:
        E, Hd = 64, 256
        P = {"embed.weight": rand(VOCAB, E), "lstm.weight_ih_l0": rand(4 * Hd, E),
             "lstm.weight_hh_l0": rand(4 * Hd, Hd), "lstm.bias": torch.zeros(4 * Hd),
             "head.weight": rand(VOCAB, Hd), "head.bias": torch.zeros(VOCAB)}
        model, B, T, lr = TorchLSTM(P), 32, 64, 2e-3
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                            betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    batches = [(torch.from_numpy(a).long(), torch.from_numpy(b).long())
               for a, b in token_batches(steps + 2, B, T)]

    def step(xy):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xy[0]).reshape(-1, VOCAB), xy[1].reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return timed_rate(step, batches, B * T)


# ---- driver -----------------------------------------------------------------

def child(workload, fw, threads, scale):
    steps = {"diabetes": 3000, "digits": 1800, "cnn": 60000, "lstm": 60, "gpt": 30}
    n = max(1, int(steps[workload] * scale))
    if workload == "cnn":
        n = max(64, n // 64 * 64)
    if fw == "lldl":
        import cppapi
        cppapi.set_num_threads(threads)
        fn = {"diabetes": lldl_seed_mlp, "digits": lldl_seed_mlp, "cnn": None,
              "lstm": lldl_lm, "gpt": lldl_lm}[workload]
        rate = lldl_cnn(n) if workload == "cnn" else fn(workload, n)
    else:
        import torch
        torch.set_num_threads(threads)
        fn = {"diabetes": torch_seed_mlp, "digits": torch_seed_mlp, "lstm": torch_lm,
              "gpt": torch_lm}.get(workload)
        rate = torch_cnn(n) if workload == "cnn" else fn(workload, n)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB -> MiB
    return {"rate": rate, "rss_mib": rss}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--only", default=",".join(TARGETS), help="comma-separated workloads")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies each workload's length")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child[0], a.child[1], int(a.child[2]), a.scale)))
        return
    threads = [int(t) for t in a.threads.split(",")]
    if not threads or min(threads) < 1:
        sys.exit(f"vs_pytorch: thread counts must be >= 1, got '{a.threads}'")
    work = [w for w in a.only.split(",") if w]
    unknown = [w for w in work if w not in TARGETS]
    if unknown:
        sys.exit(f"vs_pytorch: unknown workload(s) {', '.join(unknown)} (known: {', '.join(TARGETS)})")
    res = {}
    for w in work:
        for t in threads:
            env = dict(os.environ, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t),
                       MKL_NUM_THREADS=str(t), PYTHONUNBUFFERED="1")
            for fw in ("lldl", "torch"):
                p = subprocess.run([sys.executable, os.path.abspath(__file__), "--scale", str(a.scale),
                                    "--child", w, fw, str(t)], env=env, capture_output=True, text=True)
                if p.returncode != 0:
                    sys.exit(f"vs_pytorch: {w}/{fw}/{t} threads failed:\n{p.stderr[-2000:]}")
                res[(w, fw, t)] = json.loads(p.stdout.strip().splitlines()[-1])
                print(f"  {w:8} {fw:5} {t} thr: {res[(w, fw, t)]['rate']:12.1f} {UNITS[w]:8} "
                      f"peak RSS {res[(w, fw, t)]['rss_mib']:7.1f} MiB", flush=True)
    import importlib.metadata as md
    print(f"\nlldl vs PyTorch {md.version('torch')}, threads {a.threads}; each framework at its "
          f"faster thread setting")
    hdr = (f"{'workload':9} {'unit':9} {'lldl':>10} {'(thr)':>5} {'torch':>10} {'(thr)':>5} "
           f"{'ratio':>6} {'target':>7} {'lldl MiB':>9} {'torch MiB':>9}")
    print(hdr)
    print("-" * len(hdr))
    table = []
    for w in work:
        bl = max(threads, key=lambda t: res[(w, "lldl", t)]["rate"])
        bt = max(threads, key=lambda t: res[(w, "torch", t)]["rate"])
        lr, tr = res[(w, "lldl", bl)]["rate"], res[(w, "torch", bt)]["rate"]
        lm = max(res[(w, "lldl", t)]["rss_mib"] for t in threads)
        tm = max(res[(w, "torch", t)]["rss_mib"] for t in threads)
        tgt = TARGETS[w]
        met = "" if tgt is None else ("met" if lr / tr >= tgt else "NOT met")
        print(f"{w:9} {UNITS[w]:9} {lr:10.0f} {bl:5} {tr:10.0f} {bt:5} {lr / tr:6.2f} "
              f"{'-' if tgt is None else f'>={tgt:g}x':>7} {lm:9.1f} {tm:9.1f}  {met}")
        table.append({"workload": w, "unit": UNITS[w], "lldl": lr, "lldl_threads": bl, "torch": tr,
                      "torch_threads": bt, "ratio": lr / tr, "target": tgt, "lldl_rss_mib": lm,
                      "torch_rss_mib": tm,
                      "per_thread": {t: {fw: res[(w, fw, t)] for fw in ("lldl", "torch")}
                                     for t in threads}})
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(table, f, indent=1)


if __name__ == "__main__":
    main()
