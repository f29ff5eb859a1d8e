"""Char-level GPT and LSTM on the fortunes corpus: lldl against PyTorch, side by side.

    OMP_NUM_THREADS=2 .venv/bin/python bench/lm_vs_torch.py --model gpt --steps 500,2000
    .venv/bin/python bench/lm_vs_torch.py --model lstm --steps 200 --threads 1,2

Both frameworks train the same architecture from the same initial weights
(lldl's, copied through a safetensors checkpoint) on the same random windows,
with the same AdamW settings and cosine schedule, and are evaluated on the same
validation windows; one framework trains all its steps, then the other, in
the same process. Reported per thread count: training tokens/s, validation
loss (nats per character) at each requested step, and sampling tokens/s (lldl
with its KV cache, PyTorch without a cache, recomputing the whole context per
token, as a plain nn.Module does).

The GPT is the issue's: n_layer 4, n_head 4, n_embd 128, block 128, batch 16,
lr 1e-3. The LSTM: embedding 64, hidden 256, seq 64, batch 32, lr 2e-3.
"""
import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file
except ImportError:  # pragma: no cover
    sys.exit("lm_vs_torch: needs torch and safetensors (pip install torch safetensors)")

GPT_CFG = dict(n_layer=4, n_head=4, n_embd=128, block=128, batch=16, lr=1e-3)
LSTM_CFG = dict(n_embd=64, n_hidden=256, block=64, batch=32, lr=2e-3)


def corpus():
    import cppapi

    entries = cppapi.load_fortunes()
    split = cppapi.split_corpus(entries, 0.05, 1337)
    train, val = split[0], split[1]
    tok = cppapi.CharTokenizer(train + val)
    enc = lambda s: np.asarray(tok.encode(s), dtype=np.int64)  # noqa: E731
    return enc(train), enc(val), tok


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


class TorchGPT(torch.nn.Module):
    """GPT-2 layout with Conv1D (input x output) weights, as lldl stores them."""

    def __init__(self, P, n_layer, n_head):
        super().__init__()
        self.P = torch.nn.ParameterDict({k.replace(".", "_"): torch.nn.Parameter(v)
                                         for k, v in P.items()})
        self.n_layer, self.n_head = n_layer, n_head

    def p(self, name):
        return self.P[name.replace(".", "_")]

    def forward(self, idx):
        B, T = idx.shape
        C = self.p("wte.weight").shape[1]
        H = self.n_head
        x = self.p("wte.weight")[idx] + self.p("wpe.weight")[:T]
        for i in range(self.n_layer):
            p = lambda n: self.p(f"h.{i}.{n}")  # noqa: E731
            h = F.layer_norm(x, (C,), p("ln_1.weight"), p("ln_1.bias"))
            q, k, v = (h @ p("attn.c_attn.weight") + p("attn.c_attn.bias")).split(C, dim=2)
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + y.transpose(1, 2).reshape(B, T, C) @ p("attn.c_proj.weight") + p("attn.c_proj.bias")
            h = F.layer_norm(x, (C,), p("ln_2.weight"), p("ln_2.bias"))
            h = F.gelu(h @ p("mlp.c_fc.weight") + p("mlp.c_fc.bias"), approximate="tanh")
            x = x + h @ p("mlp.c_proj.weight") + p("mlp.c_proj.bias")
        x = F.layer_norm(x, (C,), self.p("ln_f.weight"), self.p("ln_f.bias"))
        return x @ self.p("wte.weight").T


class TorchLSTM(torch.nn.Module):
    def __init__(self, P):
        super().__init__()
        V, E = P["embed.weight"].shape
        H = P["lstm.weight_hh_l0"].shape[1]
        self.emb = torch.nn.Embedding(V, E)
        self.lstm = torch.nn.LSTM(E, H, batch_first=True)
        self.head = torch.nn.Linear(H, V)
        with torch.no_grad():
            self.emb.weight.copy_(P["embed.weight"])
            self.lstm.weight_ih_l0.copy_(P["lstm.weight_ih_l0"])
            self.lstm.weight_hh_l0.copy_(P["lstm.weight_hh_l0"])
            self.lstm.bias_ih_l0.copy_(P["lstm.bias"])
            self.lstm.bias_hh_l0.zero_()
            self.head.weight.copy_(P["head.weight"])
            self.head.bias.copy_(P["head.bias"])
        # lldl has one bias (bias_ih + bias_hh): train one of the two here.
        self.lstm.bias_hh_l0.requires_grad_(False)

    def forward(self, idx):
        h, _ = self.lstm(self.emb(idx))
        return self.head(h)


def make_models(kind, vocab):
    import cppapi

    if kind == "gpt":
        c = GPT_CFG
        m = cppapi.GPT(cppapi.GPTConfig(vocab, c["block"], c["n_layer"], c["n_head"], c["n_embd"]))
    else:
        c = LSTM_CFG
        m = cppapi.LSTM(cppapi.LSTMConfig(vocab, c["n_embd"], c["n_hidden"]))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "init.safetensors")
        m.save(path)
        P = load_file(path)
    t = TorchGPT(P, c["n_layer"], c["n_head"]) if kind == "gpt" else TorchLSTM(P)
    return m, t, c


def run(kind, steps_list, threads, train, val, vocab, sample_tokens):
    import cppapi

    total = max(steps_list)
    cppapi.set_num_threads(threads)
    torch.set_num_threads(threads)
    m, t, c = make_models(kind, vocab)
    B, T, lr = c["batch"], c["block"], c["lr"]
    m.configure_optimizer(lr=lr, weight_decay=0.1, betas=(0.9, 0.99), eps=1e-8)
    opt = torch.optim.AdamW(t.parameters(), lr=lr, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    vrng = np.random.default_rng(1)
    val_batches = [windows(val, B, T, vrng) for _ in range(16)]
    res = {"lldl": {"time": 0.0, "val": {}}, "torch": {"time": 0.0, "val": {}}}

    def lldl_step(x, y, lr_s):
        m.loss(x, y)
        m.backward()
        m.clip_grad_norm(1.0)
        m.step(lr_s)
        m.zero_grad()

    def lldl_val():
        return float(np.mean([m.loss(x, y) for x, y in val_batches]))

    def torch_step(x, y, lr_s):
        for g in opt.param_groups:
            g["lr"] = lr_s
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(t(torch.from_numpy(x).long()).reshape(-1, vocab),
                               torch.from_numpy(y).long().reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(t.parameters(), 1.0)
        opt.step()

    def torch_val():
        with torch.no_grad():
            return float(np.mean([
                F.cross_entropy(t(torch.from_numpy(x).long()).reshape(-1, vocab),
                                torch.from_numpy(y).long().reshape(-1)).item()
                for x, y in val_batches]))

    # One framework's whole run, then the other's, on the same windows (the
    # same seed): interleaving them step by step, as a first version did,
    # left each one's OpenMP threads spinning through the other's step (two
    # runtimes, two thread pools on 2 cores) and cost lldl's LSTM about 10%.
    for name, train_step, val_loss in (("lldl", lldl_step, lldl_val),
                                       ("torch", torch_step, torch_val)):
        rng = np.random.default_rng(0)
        for step in range(total):
            x, y = windows(train, B, T, rng)
            t0 = time.perf_counter()
            train_step(x, y, cosine(step, total, lr))
            res[name]["time"] += time.perf_counter() - t0
            if step + 1 in steps_list:
                res[name]["val"][step + 1] = val_loss()
    for step in sorted(steps_list):
        print(f"  [{kind} {threads}t] step {step}: val lldl {res['lldl']['val'][step]:.4f} "
              f"torch {res['torch']['val'][step]:.4f}", flush=True)
    for k in res:
        res[k]["tok_s"] = B * T * total / res[k]["time"]

    # Sampling: lldl with its KV cache / carried state; torch re-running the
    # (cropped) context for every new token.
    prompt = train[:8].astype(np.int32)
    t0 = time.perf_counter()
    m.generate(prompt, sample_tokens, temperature=1.0, top_k=vocab, seed=0)
    res["lldl"]["sample_tok_s"] = sample_tokens / (time.perf_counter() - t0)
    ctx = torch.from_numpy(prompt).long()[None, :]
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(sample_tokens):
            logits = t(ctx[:, -T:] if kind == "gpt" else ctx)[:, -1, :]
            nxt = torch.multinomial(F.softmax(logits, dim=-1), 1)
            ctx = torch.cat([ctx, nxt], dim=1)
    res["torch"]["sample_tok_s"] = sample_tokens / (time.perf_counter() - t0)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["gpt", "lstm"], default="gpt")
    ap.add_argument("--steps", default="500", help="comma-separated eval points; trains to the largest")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--sample-tokens", type=int, default=300)
    a = ap.parse_args()
    steps = sorted(int(s) for s in a.steps.split(","))
    train, val, tok = corpus()
    vocab = tok.vocab_size()
    print(f"fortunes: {len(train)} train / {len(val)} val characters, vocab {vocab}; "
          f"torch {torch.__version__}", flush=True)
    rows = {}
    for th in (int(s) for s in a.threads.split(",")):
        os.environ["OMP_NUM_THREADS"] = str(th)
        rows[th] = run(a.model, steps, th, train, val, vocab, a.sample_tokens)
    best_torch = max(r["torch"]["tok_s"] for r in rows.values())
    best_torch_sample = max(r["torch"]["sample_tok_s"] for r in rows.values())
    print(f"\n{a.model}: threads | train tok/s lldl, torch, ratio | sample tok/s lldl, torch | val@steps")
    for th, r in rows.items():
        vals = ", ".join(f"{s}: {r['lldl']['val'][s]:.3f}/{r['torch']['val'][s]:.3f}" for s in steps)
        print(f"  {th} | {r['lldl']['tok_s']:8.0f} {r['torch']['tok_s']:8.0f} "
              f"{r['lldl']['tok_s'] / r['torch']['tok_s']:5.2f} | {r['lldl']['sample_tok_s']:8.0f} "
              f"{r['torch']['sample_tok_s']:7.0f} | {vals}")
    best = max(rows.values(), key=lambda r: r["lldl"]["tok_s"])
    print(f"lldl best / torch at its faster setting: training {best['lldl']['tok_s'] / best_torch:.2f}x, "
          f"sampling {best['lldl']['sample_tok_s'] / best_torch_sample:.1f}x")


if __name__ == "__main__":
    main()
