"""Char-level GPT and LSTM on the fortunes corpus: lldl against PyTorch.

    .venv/bin/python bench/lm_vs_torch.py --model gpt --steps 100,200 [--threads 1,2]
                                          [--repeats 5] [--sample-tokens 120] [--json FILE]

Both frameworks train the same architecture from the same initial weights
(lldl's, copied through a safetensors checkpoint written by this script's
parent process) on the same random windows, with the same AdamW settings and
cosine schedule, and are evaluated on the same validation windows. Each
(framework, thread count, repeat) is a process of its own, with the thread
variables set before import and the order alternated between repeats
(bench/harness.py). Reported: training tokens/s and sampling tokens/s as
median [min-max] of the repeats, and the validation loss (nats per character)
at each requested step (identical across repeats up to float rounding in the
threads' reductions). Sampling is
`--sample-tokens` after an 8-character prompt with each framework's own cache:
lldl's generate (KV cache for the GPT, carried (h, c) for the LSTM) against
TorchGPT.generate (a KV cache written into preallocated buffers, SDPA over the
cached keys) or nn.LSTM carrying its state. PyTorch runs eager with fused
AdamW (vs_pytorch.py has the torch.compile rows).

The GPT is the issue's: n_layer 4, n_head 4, n_embd 128, block 128, batch 16,
lr 1e-3. The LSTM: embedding 64, hidden 256, seq 64, batch 32, lr 2e-3
(--no-table-projection runs lldl's per-token input projection).
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

GPT_CFG = dict(n_layer=4, n_head=4, n_embd=128, block=128, batch=16, lr=1e-3)
LSTM_CFG = dict(n_embd=64, n_hidden=256, block=64, batch=32, lr=2e-3)


def windows(tokens, B, T, rng):
    starts = rng.integers(0, len(tokens) - T - 1, size=B)
    x = np.stack([tokens[s:s + T] for s in starts])
    y = np.stack([tokens[s + 1:s + T + 1] for s in starts])
    return x.astype(np.int32), y.astype(np.int32)


def cosine(step, total, lr, warmup=100):
    lo = lr / 10
    if step < warmup:
        return lr * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - 1 - warmup))
    return lo + 0.5 * (lr - lo) * (1 + math.cos(math.pi * p))


def lldl_model(kind, vocab, table_projection=True):
    import cppapi
    if kind == "gpt":
        c = GPT_CFG
        return cppapi.GPT(cppapi.GPTConfig(vocab, c["block"], c["n_layer"], c["n_head"], c["n_embd"]))
    c = LSTM_CFG
    return cppapi.LSTM(cppapi.LSTMConfig(vocab, c["n_embd"], c["n_hidden"],
                                         table_projection=table_projection))


def prepare(kind, d):
    """In the parent: the corpus as token files and lldl's initial weights."""
    import cppapi
    entries = cppapi.load_fortunes()
    train, val = cppapi.split_corpus(entries, 0.05, 1337)[:2]
    tok = cppapi.CharTokenizer(train + val)
    np.save(os.path.join(d, "train.npy"), np.asarray(tok.encode(train), dtype=np.int32))
    np.save(os.path.join(d, "val.npy"), np.asarray(tok.encode(val), dtype=np.int32))
    lldl_model(kind, tok.vocab_size()).save(os.path.join(d, "init.safetensors"))
    return tok.vocab_size()


def train_and_sample(fw, kind, d, vocab, steps_list, sample_tokens, table_projection):
    """In a child: one framework's whole run. Returns its rates and losses."""
    train, val = np.load(os.path.join(d, "train.npy")), np.load(os.path.join(d, "val.npy"))
    c = GPT_CFG if kind == "gpt" else LSTM_CFG
    B, T, lr, total = c["batch"], c["block"], c["lr"], max(steps_list)
    vrng = np.random.default_rng(1)
    val_batches = [windows(val, B, T, vrng) for _ in range(16)]
    threads = int(os.environ["OMP_NUM_THREADS"])
    if fw == "lldl":
        import cppapi
        cppapi.set_num_threads(threads)
        m = lldl_model(kind, vocab, table_projection)
        m.configure_optimizer(lr=lr, weight_decay=0.1, betas=(0.9, 0.99), eps=1e-8)

        def step(x, y, lr_s):
            m.loss(x, y)
            m.backward()
            m.clip_grad_norm(1.0)
            m.step(lr_s)
            m.zero_grad()

        val_loss = lambda: float(np.mean([m.loss(x, y) for x, y in val_batches]))  # noqa: E731

        def sample(prompt, seed):
            return m.generate(prompt, sample_tokens, temperature=1.0, top_k=vocab, seed=seed)
    else:
        import torch
        import torch.nn.functional as F
        from safetensors.torch import load_file
        import torch_models
        torch.set_num_threads(threads)
        P = load_file(os.path.join(d, "init.safetensors"))
        t = (torch_models.TorchGPT(P, c["n_layer"], c["n_head"]) if kind == "gpt"
             else torch_models.TorchLSTM(P))
        params = [p for p in t.parameters() if p.requires_grad]
        opt = torch_models.adam(params, lr, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
        xent = lambda x, y: F.cross_entropy(t(torch.from_numpy(x).long()).reshape(-1, vocab),  # noqa: E731
                                            torch.from_numpy(y).long().reshape(-1))

        def step(x, y, lr_s):
            for g in opt.param_groups:
                g["lr"] = lr_s
            opt.zero_grad(set_to_none=True)
            xent(x, y).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
            opt.step()

        def val_loss():
            with torch.no_grad():
                return float(np.mean([xent(x, y).item() for x, y in val_batches]))

        gen = torch.Generator().manual_seed(0)

        def sample(prompt, seed):
            p = torch.from_numpy(prompt).long()[None, :]
            if kind == "gpt":
                return t.generate(p, sample_tokens, c["block"], generator=gen)
            return t.generate(p, sample_tokens, generator=gen)

    rng, spent, vals = np.random.default_rng(0), 0.0, {}
    for s in range(total):
        x, y = windows(train, B, T, rng)
        t0 = time.perf_counter()
        step(x, y, cosine(s, total, lr))
        spent += time.perf_counter() - t0
        if s + 1 in steps_list:
            vals[str(s + 1)] = val_loss()
    prompt = train[:8].astype(np.int32)
    sample(prompt, 0)  # warm up
    t0 = time.perf_counter()
    sample(prompt, 1)
    return {"rate": B * T * total / spent, "sample_rate": sample_tokens / (time.perf_counter() - t0),
            "val": vals}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["gpt", "lstm"], default="gpt")
    ap.add_argument("--steps", default="200", help="comma-separated eval points; trains to the largest")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sample-tokens", type=int, default=120)
    ap.add_argument("--no-table-projection", action="store_true",
                    help="lldl's LSTM projects every token (LSTMConfig(table_projection=False))")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # framework, dir, vocab
    a = ap.parse_args()
    steps = sorted(int(s) for s in a.steps.split(","))
    if a.model == "gpt" and a.sample_tokens + 8 > GPT_CFG["block"]:
        sys.exit(f"lm_vs_torch: --sample-tokens + 8 must fit the GPT's block ({GPT_CFG['block']})")
    if a.child:
        fw, d, vocab = a.child[0], a.child[1], int(a.child[2])
        harness.child_main(lambda: train_and_sample(fw, a.model, d, vocab, steps, a.sample_tokens,
                                                    not a.no_table_projection))
        return
    threads = [int(t) for t in a.threads.split(",") if t]
    if not threads or min(threads) < 1 or a.repeats < 1 or min(steps) < 1:
        sys.exit("lm_vs_torch: thread counts, --repeats and --steps must be >= 1")
    with tempfile.TemporaryDirectory() as d:
        vocab = prepare(a.model, d)
        extra = ["--no-table-projection"] if a.no_table_projection else []
        runs, repeat_s = harness.run_matrix(
            ["lldl", "torch"], threads, a.repeats,
            lambda fw, t: [os.path.abspath(__file__), "--model", a.model, "--steps", a.steps,
                           "--sample-tokens", str(a.sample_tokens), "--child", fw, d, str(vocab)] + extra,
            log=lambda s: print(s, flush=True))
    train = {k: harness.summarise(r) for k, r in runs.items()}
    samp = {k: harness.summarise(r, "sample_rate") for k, r in runs.items()}
    vals = {k: {s: float(np.median([r["val"][str(s)] for r in res if "val" in r] or [np.nan]))
                for s in steps} for k, res in runs.items()}
    print(f"\n{a.model}: torch {harness.torch_version()}, {a.repeats} repeats, tokens/s median [min-max]")
    for t in threads:
        print(f"  {t} thr train  lldl {harness.fmt_cell(train[('lldl', t)])}  torch "
              f"{harness.fmt_cell(train[('torch', t)])}  sample lldl {harness.fmt_cell(samp[('lldl', t)])}"
              f"  torch {harness.fmt_cell(samp[('torch', t)])}")
        print("           val loss lldl/torch: " +
              ", ".join(f"{s}: {vals[('lldl', t)][s]:.3f}/{vals[('torch', t)][s]:.3f}" for s in steps))
    rt, rs = harness.ratios(train, "lldl", "torch", threads), harness.ratios(samp, "lldl", "torch", threads)
    for name, r in (("training", rt), ("sampling", rs)):
        print(f"  {name} lldl/torch: " + ", ".join(f"{t} thr {harness.fmt_ratio(r['by_threads'][str(t)])}"
                                                   for t in threads) +
              f", best vs best {harness.fmt_ratio(r['best_vs_best'])}")
    if a.json:
        doc = {"schema": harness.SCHEMA, "benchmark": "lm_vs_torch", "model": a.model,
               "torch": harness.torch_version(), "lldl_commit": harness.git_commit(),
               "threads": threads, "repeats": a.repeats, "steps": steps,
               "table_projection": not a.no_table_projection, "repeat_wall_s": repeat_s,
               "machine_end": harness.machine(),
               "cells": [dict(workload=f"{a.model}-{what}", variant=fw, framework=fw, threads=t,
                              unit="tokens/s", **cell[(fw, t)])
                         for what, cell in (("train", train), ("sample", samp))
                         for fw in ("lldl", "torch") for t in threads],
               "val_loss": {f"{fw}/{t}": vals[(fw, t)] for fw in ("lldl", "torch") for t in threads},
               "ratios": [dict(rt, workload=f"{a.model}-train"), dict(rs, workload=f"{a.model}-sample")]}
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
