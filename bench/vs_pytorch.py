"""lldl against PyTorch on six workloads, every measurement in a process of its own.

    .venv/bin/python bench/vs_pytorch.py [--threads 1,2] [--repeats 5] [--only gpt,lstm]
                                         [--quick] [--no-compile] [--json FILE]

Workloads (the same model, batch and optimiser in both frameworks):
  diabetes  the seed's MLP: 10 -> 16 sigmoid -> 16 sigmoid -> 1, MSE, SGD lr 0.01,
            full batch (353 rows); training steps/s
  digits    64 -> 89 tanh -> 10, softmax cross-entropy, SGD lr 0.1, batch 32; steps/s
  cnn       the Fashion-MNIST CNN of issue 4, Adam lr 1e-3, batch 64, on the first
            6,400 training images; images/s
  lstm      char LSTM: embedding 64, hidden 256, seq 64, batch 32, AdamW; tokens/s
  gpt       char GPT: 4 layers, 4 heads, 128 wide, block 128, batch 16, AdamW; tokens/s
  sample    the same GPT sampling 120 tokens after an 8-token prompt, each framework
            through its own KV cache; tokens/s

Variants (rows). lldl: `fit` is the C++ training loop of the seed's API
(Trainer.fit), `graph` the same MLP written with cppapi.Graph and driven one step
at a time from Python (like for like with an eager PyTorch loop), `lm` the
GPT/LSTM objects' loss/backward/step from Python, `lm-per-token` the LSTM with
its embedding-table projection switched off (LSTMConfig(table_projection=False)).
PyTorch: `eager` is the training loop its users write (nn.Linear/F.linear,
foreach SGD, fused Adam/AdamW, channels_last CNN with max-pool before an
in-place ReLU, F.scaled_dot_product_attention, nn.LSTM); `compile` is the same
with the model and loss under torch.compile: its compile time (the warm-up
steps) is excluded from the rate and reported as compile_s; a compile failure
is reported with its text.

Method: see bench/harness.py (a process per measurement, thread variables set
before import, order alternated between repeats, median and min-max of
--repeats). Peak RSS is each process's ru_maxrss (interpreter, libraries,
data and model; torch.compile's worker processes are not counted). The
language models train on random token windows over a 96-symbol vocabulary
(throughput does not depend on the text; bench/lm_vs_torch.py compares losses
on real text).
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

VOCAB = 96
FASHION = "/usr/share/datasets/fashion-mnist"
UNITS = {"diabetes": "steps/s", "digits": "steps/s", "cnn": "images/s", "lstm": "tokens/s",
         "gpt": "tokens/s", "sample": "tokens/s"}
# Steps (images for the CNN, tokens for sampling) timed per process: about
# 1-2 s of the slower framework at 1 thread on the 2-core machine.
STEPS = {"diabetes": 6000, "digits": 4500, "cnn": 6400, "lstm": 30, "gpt": 15, "sample": 4}
QUICK = {"diabetes": 300, "digits": 450, "cnn": 640, "lstm": 3, "gpt": 2, "sample": 1}
# (variant, framework, what it measures) per workload; the first lldl and the
# first torch variant are the headline pair of the ratio table.
VARIANTS = {
    "diabetes": [("lldl-fit", "lldl", "C++ Trainer.fit loop"),
                 ("lldl-graph", "lldl", "cppapi.Graph, one step per Python call"),
                 ("torch-eager", "torch", "eager Python loop, foreach SGD"),
                 ("torch-compile", "torch", "torch.compile(model+loss), foreach SGD")],
    "cnn": [("lldl-fit", "lldl", "C++ Trainer.fit loop, Adam"),
            ("torch-eager", "torch", "eager, channels_last, pool->ReLU_, fused Adam"),
            ("torch-compile", "torch", "torch.compile of the eager model+loss")],
    "lstm": [("lldl-lm", "lldl", "LSTM.loss/backward/step, table projection"),
             ("lldl-lm-per-token", "lldl", "the same, table_projection=False"),
             ("torch-eager", "torch", "nn.LSTM, fused AdamW"),
             ("torch-compile", "torch", "torch.compile(model+loss), fused AdamW")],
    "gpt": [("lldl-lm", "lldl", "GPT.loss/backward/step"),
            ("torch-eager", "torch", "F.linear + SDPA, fused AdamW"),
            ("torch-compile", "torch", "torch.compile(model+loss), fused AdamW")],
    "sample": [("lldl-kv", "lldl", "GPT.generate, KV cache"),
               ("torch-kv", "torch", "TorchGPT.generate, KV cache, eager")],
}
VARIANTS["digits"] = VARIANTS["diabetes"]
WORKLOADS = list(UNITS)
# Seconds per process on an idle 2-core machine (interpreter and import,
# data, warm-up, the timed steps), for the printed estimate.
PROCESS_S = {"lldl": 2.5, "torch": 4.5}
COMPILE_S = 10.0
COMPILE_WARMUP = 3  # steps under torch.compile before timing: compile + recompiles


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


def mlp_spec(kind):
    """Data, layer widths, activation, batch and lr of the two seed MLPs."""
    if kind == "diabetes":
        x, y = diabetes_data()
        return x, y, [10, 16, 16, 1], "sigmoid", len(x), 0.01
    x, y = digits_data()
    return x, y, [64, 89, 10], "tanh", 32, 0.1


def fashion_data(n):
    """The first n training images as float32 in [0, 1], (n, 1, 28, 28), and labels."""
    with gzip.open(os.path.join(FASHION, "train-images-idx3-ubyte.gz")) as f:
        img = np.frombuffer(f.read(), np.uint8, offset=16)
    with gzip.open(os.path.join(FASHION, "train-labels-idx1-ubyte.gz")) as f:
        lab = np.frombuffer(f.read(), np.uint8, offset=8)
    x = (img[:n * 784].astype(np.float32) / 255.0).reshape(n, 1, 28, 28)
    return x, lab[:n].astype(np.int32)


def batches_of(n, batch, seed):
    """Index batches of one shuffled pass (the whole set when batch >= n)."""
    if batch >= n:
        return [None]
    perm = np.random.default_rng(seed).permutation(n)
    return [perm[i:i + batch] for i in range(0, n, batch)]


def token_batches(n, B, T, seed=0):
    rng = np.random.default_rng(seed)
    toks = rng.integers(0, VOCAB, size=(n, B, T + 1)).astype(np.int32)
    return [(np.ascontiguousarray(t[:, :-1]), np.ascontiguousarray(t[:, 1:])) for t in toks]


def timed(step, items, warmup):
    """Runs step on the first `warmup` items untimed (their time is returned as
    the warm-up, e.g. torch.compile's), then times the rest."""
    t0 = time.perf_counter()
    for it in items[:warmup]:
        step(it)
    t1 = time.perf_counter()
    for it in items[warmup:]:
        step(it)
    return time.perf_counter() - t1, t1 - t0


# ---- lldl -------------------------------------------------------------------

def lldl_fit_mlp(kind, steps):
    import cppapi as c
    L, A = c.LayerType, c.ActivationType
    x, y, widths, act, batch, lr = mlp_spec(kind)
    a = {"sigmoid": A.Sigmoid, "tanh": A.Tanh}[act]
    last = A.Linear if kind == "diabetes" else A.Softmax
    layers = [c.Layer2(L.Dense, w, a) for w in widths[1:-1]] + [c.Layer2(L.Dense, widths[-1], last)]
    loss = c.LossType.MSE if kind == "diabetes" else c.LossType.CROSS_ENTROPY
    trainer = c.Trainer(c.NeuralNetwork2(layers, loss), c.OptimiserType.SGD, lr)
    per_epoch = -(-len(x) // batch)
    epochs = max(1, steps // per_epoch)
    trainer.fit(x, y, epochs=2, eval_every=2, batch_size=batch, verbose=0)  # build, warm up
    t0 = time.perf_counter()
    trainer.fit(x, y, epochs=epochs, eval_every=epochs, batch_size=batch, restart=False, verbose=0)
    return {"rate": epochs * per_epoch / (time.perf_counter() - t0)}


def lldl_graph_mlp(kind, steps):
    """The same MLP in the graph API, one Python call sequence per step."""
    import cppapi as c
    x, y, widths, act, batch, lr = mlp_spec(kind)
    g = c.Graph()
    Ws = [(g.param((i, o), init="xavier_uniform", seed=k + 1), g.param((o,), init="zeros"))
          for k, (i, o) in enumerate(zip(widths, widths[1:]))]
    opt = c.Optimizer(g, c.OptimiserType.SGD, lr=lr)
    f = {"sigmoid": c.sigmoid, "tanh": c.tanh}[act]
    per_epoch = batches_of(len(x), batch, 0)

    def step(idx):
        xb, yb = (x, y) if idx is None else (x[idx], y[idx])
        h = g.input(xb)
        for k, (W, b) in enumerate(Ws):
            h = c.linear(h, W, b)
            if k < len(Ws) - 1:
                h = f(h)
        loss = c.mse_loss(h, g.input(yb)) if kind == "diabetes" else c.cross_entropy(h, g.input(yb))
        g.backward(loss)
        opt.step()
        g.reset()

    items = (per_epoch * (-(-(steps + 2 * len(per_epoch)) // len(per_epoch))))
    dt, _ = timed(step, items, 2 * len(per_epoch))
    return {"rate": (len(items) - 2 * len(per_epoch)) / dt}


def lldl_cnn(images):
    import cppapi as c
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    import fashion_cnn
    x, y = fashion_data(images)
    trainer = c.Trainer(fashion_cnn.build(), c.OptimiserType.Adam, 1e-3)
    trainer.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)  # build, warm up
    # fit() ends each epoch with an accuracy pass over the training set that
    # the PyTorch loop does not make: its samples_per_s is the training alone.
    h = trainer.fit(x, y, epochs=1, batch_size=64, restart=False, verbose=0)
    return {"rate": h["samples_per_s"][-1]}


def lldl_lm(kind, steps, table_projection=True):
    import cppapi as c
    if kind == "gpt":
        m = c.GPT(c.GPTConfig(VOCAB, 128, 4, 4, 128))
        B, T, lr = 16, 128, 1e-3
    else:
        m = c.LSTM(c.LSTMConfig(VOCAB, 64, 256, table_projection=table_projection))
        B, T, lr = 32, 64, 2e-3
    m.configure_optimizer(lr=lr, weight_decay=0.1, betas=(0.9, 0.99), eps=1e-8)

    def step(xy):
        m.loss(*xy)
        m.backward()
        m.clip_grad_norm(1.0)
        m.step(lr)
        m.zero_grad()

    dt, _ = timed(step, token_batches(steps + 2, B, T), 2)
    return {"rate": steps * B * T / dt}


def lldl_sample(reps, new=120):
    import cppapi as c
    m = c.GPT(c.GPTConfig(VOCAB, 128, 4, 4, 128))
    prompt = np.arange(8, dtype=np.int32)
    m.generate(prompt, 8, temperature=1.0, top_k=VOCAB, seed=0)  # warm up
    t0 = time.perf_counter()
    for r in range(reps):
        out = m.generate(prompt, new, temperature=1.0, top_k=VOCAB, seed=r)
    dt = time.perf_counter() - t0
    assert len(out) >= new, "generate returned fewer tokens than asked"
    return {"rate": reps * new / dt}


# ---- PyTorch ----------------------------------------------------------------

def compiled(fn, compile_it):
    import torch
    return torch.compile(fn) if compile_it else fn


def torch_mlp(kind, steps, compile_it):
    import torch
    import torch.nn as tnn
    import torch.nn.functional as F
    torch.manual_seed(0)
    x, y, widths, act, batch, lr = mlp_spec(kind)
    layers = []
    for i, o in zip(widths, widths[1:]):
        layers += [tnn.Linear(i, o), tnn.Sigmoid() if act == "sigmoid" else tnn.Tanh()]
    model = tnn.Sequential(*layers[:-1])
    x = torch.from_numpy(x)
    y = torch.from_numpy(y if kind == "diabetes" else y.astype(np.int64))
    crit = F.mse_loss if kind == "diabetes" else F.cross_entropy
    loss_of = compiled(lambda xb, yb: crit(model(xb), yb), compile_it)
    opt = torch.optim.SGD(model.parameters(), lr=lr, foreach=True)
    per_epoch = [None if i is None else torch.from_numpy(i) for i in batches_of(len(x), batch, 0)]

    def step(idx):
        xb, yb = (x, y) if idx is None else (x[idx], y[idx])
        opt.zero_grad(set_to_none=True)
        loss_of(xb, yb).backward()
        opt.step()

    warm = max(2 * len(per_epoch), COMPILE_WARMUP)
    items = per_epoch * (-(-(steps + warm) // len(per_epoch)))
    dt, warm_s = timed(step, items, warm)
    return {"rate": (len(items) - warm) / dt, "compile_s": warm_s if compile_it else None}


def torch_cnn(images, compile_it):
    import torch
    import torch.nn.functional as F
    import torch_models
    torch.manual_seed(0)
    x, y = fashion_data(images)
    x, y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    model = torch_models.cnn_model()
    opt = torch_models.adam(model.parameters(), lr=1e-3)
    loss_of = compiled(lambda xb, yb: F.cross_entropy(model(xb), yb), compile_it)
    cl = torch.channels_last

    def step(idx):
        opt.zero_grad(set_to_none=True)
        loss_of(x[idx].contiguous(memory_format=cl), y[idx]).backward()
        opt.step()

    # Warm-up on up to 4 batches (compilation included), then one pass over the images.
    warm = [torch.arange(i, i + 64) for i in range(0, min(256, images), 64)]
    items = warm + [torch.from_numpy(i) for i in batches_of(images, 64, 0)]
    dt, warm_s = timed(step, items, len(warm))
    return {"rate": images / dt, "compile_s": warm_s if compile_it else None}


def random_gpt_params(g):
    import torch
    rand = lambda *s: torch.randn(*s, generator=g) * 0.02  # noqa: E731
    C, L, blk = 128, 4, 128
    P = {"wte.weight": rand(VOCAB, C), "wpe.weight": rand(blk, C),
         "ln_f.weight": torch.ones(C), "ln_f.bias": torch.zeros(C)}
    for i in range(L):
        for ln in ("ln_1", "ln_2"):
            P[f"h.{i}.{ln}.weight"], P[f"h.{i}.{ln}.bias"] = torch.ones(C), torch.zeros(C)
        for name, (fi, fo) in {"attn.c_attn": (C, 3 * C), "attn.c_proj": (C, C),
                               "mlp.c_fc": (C, 4 * C), "mlp.c_proj": (4 * C, C)}.items():
            P[f"h.{i}.{name}.weight"], P[f"h.{i}.{name}.bias"] = rand(fi, fo), torch.zeros(fo)
    return P


def torch_lm(kind, steps, compile_it):
    import torch
    import torch.nn.functional as F
    import torch_models
    g = torch.Generator().manual_seed(0)
    if kind == "gpt":
        model, B, T, lr = torch_models.TorchGPT(random_gpt_params(g), 4, 4), 16, 128, 1e-3
    else:
        rand = lambda *s: torch.randn(*s, generator=g) * 0.02  # noqa: E731
        E, Hd = 64, 256
        P = {"embed.weight": rand(VOCAB, E), "lstm.weight_ih_l0": rand(4 * Hd, E),
             "lstm.weight_hh_l0": rand(4 * Hd, Hd), "lstm.bias": torch.zeros(4 * Hd),
             "head.weight": rand(VOCAB, Hd), "head.bias": torch.zeros(VOCAB)}
        model, B, T, lr = torch_models.TorchLSTM(P), 32, 64, 2e-3
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch_models.adam(params, lr, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    loss_of = compiled(lambda a, b: F.cross_entropy(model(a).reshape(-1, VOCAB), b.reshape(-1)),
                       compile_it)
    warm = COMPILE_WARMUP if compile_it else 2
    batches = [(torch.from_numpy(a).long(), torch.from_numpy(b).long())
               for a, b in token_batches(steps + warm, B, T)]

    def step(xy):
        opt.zero_grad(set_to_none=True)
        loss_of(*xy).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()

    dt, warm_s = timed(step, batches, warm)
    return {"rate": steps * B * T / dt, "compile_s": warm_s if compile_it else None}


def torch_sample(reps, new=120):
    import torch
    import torch_models
    g = torch.Generator().manual_seed(0)
    model = torch_models.TorchGPT(random_gpt_params(g), 4, 4)
    prompt = torch.arange(8)[None, :]
    model.generate(prompt, 8, 128, generator=g)  # warm up
    t0 = time.perf_counter()
    for _ in range(reps):
        out = model.generate(prompt, new, 128, generator=g)
    dt = time.perf_counter() - t0
    assert out.shape[1] == new
    return {"rate": reps * new / dt}


# ---- driver -----------------------------------------------------------------

def measure(workload, variant, n):
    """Runs in the child, after its thread variables were set by the parent."""
    if variant.startswith("lldl"):
        import cppapi
        cppapi.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        if workload in ("diabetes", "digits"):
            return (lldl_fit_mlp if variant == "lldl-fit" else lldl_graph_mlp)(workload, n)
        if workload == "cnn":
            return lldl_cnn(n)
        if workload == "sample":
            return lldl_sample(n)
        return lldl_lm(workload, n, table_projection=variant != "lldl-lm-per-token")
    import torch
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    comp = variant == "torch-compile"
    if workload in ("diabetes", "digits"):
        return torch_mlp(workload, n, comp)
    if workload == "cnn":
        return torch_cnn(n, comp)
    if workload == "sample":
        return torch_sample(n)
    return torch_lm(workload, n, comp)


def print_tables(work, cells, ratio_rows, threads, log=print):
    hdr = f"{'workload':9} {'variant':18} {'unit':9} " + " ".join(
        f"{f'{t} thr median [min-max]':>24}" for t in threads) + f" {'peak MiB':>9}  measures"
    log(hdr)
    log("-" * len(hdr))
    for w in work:
        for v, fw, what in VARIANTS[w]:
            cs = [cells.get((w, v, t)) for t in threads]
            if all(c is None for c in cs):
                continue
            rss = max((c["rss_mib"] or 0) for c in cs if c is not None)
            comp = [x for c in cs if c and "compile_s" in c for x in c["compile_s"]]
            extra = f"; compile {min(comp):.0f}-{max(comp):.0f} s" if comp else ""
            errs = [c["errors"][0] for c in cs if c and c["errors"]]
            extra += f"; FAILED: {errs[0].splitlines()[0][:120]}" if errs else ""
            log(f"{w:9} {v:18} {UNITS[w]:9} " + " ".join(harness.fmt_cell(c, 24) for c in cs) +
                f" {rss:9.0f}  {what}{extra}")
    log("\nratios lldl / torch (medians): " + ", ".join(f"{t} thr" for t in threads) +
        ", best vs best (each at its faster thread count)")
    for r in ratio_rows:
        log(f"{r['workload']:9} {r['lldl']:18} / {r['torch']:14} " +
            " ".join(harness.fmt_ratio(r["by_threads"][str(t)]) for t in threads) +
            f"   best {harness.fmt_ratio(r['best_vs_best'])} ({r['lldl_best_threads']} vs "
            f"{r['torch_best_threads']} thr)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=None, help="per cell (default 5; 3 with --quick)")
    ap.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    ap.add_argument("--quick", action="store_true", help="tiny step counts: a smoke run")
    ap.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rows")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        harness.child_main(lambda: measure(a.child[0], a.child[1], int(a.child[2])))
        return
    threads = [int(t) for t in a.threads.split(",") if t]
    if not threads or min(threads) < 1:
        sys.exit(f"vs_pytorch: thread counts must be >= 1, got '{a.threads}'")
    repeats = a.repeats or (3 if a.quick else 5)
    if repeats < 1:
        sys.exit(f"vs_pytorch: --repeats must be >= 1, got {repeats}")
    work = [w for w in a.only.split(",") if w]
    unknown = [w for w in work if w not in VARIANTS]
    if unknown:
        sys.exit(f"vs_pytorch: unknown workload(s) {', '.join(unknown)} (known: {', '.join(WORKLOADS)})")
    steps = QUICK if a.quick else STEPS
    names = [(w, v) for w in work for v, fw, _ in VARIANTS[w]
             if not (a.no_compile and v == "torch-compile")]
    keys = [f"{w}/{v}" for w, v in names]
    print(f"vs_pytorch: {len(keys)} variants x {len(threads)} thread counts x {repeats} repeats = "
          f"{len(keys) * len(threads) * repeats} processes; torch {harness.torch_version()}, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    def argv_of(key, t):
        w, v = key.split("/")
        return [os.path.abspath(__file__), "--child", w, v, str(steps[w])]

    est = sum(PROCESS_S[v.split("/")[1].split("-")[0]] + (COMPILE_S if "compile" in v else 0)
              for v in keys) * len(threads) * repeats
    print(f"estimated wall time on an idle 2-core machine: {est / 60:.1f} min"
          f"{' (quick)' if a.quick else ''}", flush=True)
    t0 = time.perf_counter()
    mach0 = harness.machine()

    def report(runs, repeat_s, final=False):
        cells = {}
        for (key, t), res in runs.items():
            if res:
                w, v = key.split("/")
                cells[(w, v, t)] = harness.summarise(res)
        ratio_rows = []
        for w in work:
            for lv in [v for v, fw, _ in VARIANTS[w] if fw == "lldl"]:
                for tv in [v for v, fw, _ in VARIANTS[w] if fw == "torch" and (w, v, threads[0]) in cells]:
                    sub = {(v, t): cells.get((w, v, t)) for v in (lv, tv) for t in threads}
                    ratio_rows.append(dict(harness.ratios(sub, lv, tv, threads), workload=w))
        wall = time.perf_counter() - t0
        if final:
            print(f"\nlldl vs PyTorch {harness.torch_version()}, {repeats} repeats per cell, "
                  f"order alternated; wall time {wall / 60:.1f} min (estimate {est / 60:.1f} min)")
            print_tables(work, cells, ratio_rows, threads)
        if not a.json:
            return
        doc = {"schema": harness.SCHEMA, "benchmark": "vs_pytorch", "torch": harness.torch_version(),
               "lldl_commit": harness.git_commit(), "threads": threads, "repeats": repeats,
               "repeats_done": len(repeat_s), "complete": final, "quick": a.quick,
               "steps": {w: steps[w] for w in work}, "wall_s": wall, "estimated_s": est,
               "repeat_wall_s": repeat_s, "machine_start": mach0, "machine_end": harness.machine(),
               "cells": [dict(workload=w, variant=v, framework=fw, measures=what, unit=UNITS[w],
                              threads=t, **cells[(w, v, t)])
                         for w in work for v, fw, what in VARIANTS[w] for t in threads
                         if (w, v, t) in cells],
               "ratios": ratio_rows}
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)

    runs, repeat_s = harness.run_matrix(keys, threads, repeats, argv_of,
                                        log=lambda s: print(s, flush=True), on_progress=report)
    report(runs, repeat_s, final=True)

if __name__ == "__main__":
    main()
