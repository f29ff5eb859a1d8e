"""GPT-2 124M on the CPU: lldl against PyTorch and transformers, side by side.

    .venv/bin/python bench/gpt2_vs_torch.py                # the full run (about 15 min on 2 cores)
    .venv/bin/python bench/gpt2_vs_torch.py --quick        # a smoke run on a 2-layer model
    .venv/bin/python bench/gpt2_vs_torch.py --out bench/results/cpu-2core/gpt2_vs_torch.json

Rows (each measurement is one fresh process; the thread variables are set in
its environment before anything is imported; the frameworks alternate order
from round to round; medians and ranges over --repeats rounds):
  train     one AdamW step (forward, backward, clip 1.0, update) of the 124M
            model at batch 4 x 256 tokens, tokens/s: lldl (cppapi.GPT, memory
            planning on), PyTorch eager (transformers GPT2LMHeadModel, float32,
            attn_implementation="sdpa", dropout 0, fused AdamW) and
            torch.compile of the same model. Each process times --steps steps
            after one warm-up step (torch.compile: after its compilation).
  generate  128 new tokens after a 32-token prompt, batch 1, greedy, KV cache:
            lldl (GPT.generate) against transformers generate(use_cache=True).
            Tokens/s counts the 128 new tokens over the whole call (prefill
            included).
  llmc      lldl's step time at llm.c's CPU shape, batch 4 x 64 tokens.
  rss       the peak resident set (getrusage) of each process.

Weights: each framework starts from its own random GPT-2 initialisation
(N(0, 0.02), residual projections scaled); speed does not depend on the
values, so no weights are copied between them.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FULL = dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab=50257)
QUICK = dict(n_layer=2, n_head=12, n_embd=768, n_positions=1024, vocab=50257)


# ---- workers (one process each) -------------------------------------------------

def peak_rss_mib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def batch(cfg, B, T, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.integers(0, cfg["vocab"], size=(B, T + 1))
    return x[:, :-1].astype(np.int32), x[:, 1:].astype(np.int32)


def lldl_model(cfg):
    import cppapi
    c = cppapi.GPTConfig(cfg["vocab"], cfg["n_positions"], cfg["n_layer"], cfg["n_head"], cfg["n_embd"])
    return cppapi.GPT(c, seed=1)


def work_lldl_train(cfg, B, T, steps):
    m = lldl_model(cfg)
    m.set_memory_planning(True)
    m.configure_optimizer(lr=1e-4, weight_decay=0.1, betas=(0.9, 0.95))
    times = []
    for i in range(steps + 1):
        x, y = batch(cfg, B, T, i)
        t0 = time.perf_counter()
        m.loss(x, y)
        m.backward()
        m.clip_grad_norm(1.0)
        m.step()
        m.zero_grad()
        times.append(time.perf_counter() - t0)
    return times[1:]


def torch_model(cfg):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(1)
    c = GPT2Config(n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"],
                   n_positions=cfg["n_positions"], vocab_size=cfg["vocab"], resid_pdrop=0.0,
                   embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel._from_config(c, attn_implementation="sdpa").float()


def work_torch_train(cfg, B, T, steps, compiled):
    import torch
    import torch.nn.functional as F
    model = torch_model(cfg)
    model.train()
    try:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, betas=(0.9, 0.95),
                                fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, betas=(0.9, 0.95),
                                foreach=True)
    V = cfg["vocab"]

    def loss_of(x, y):
        logits = model(input_ids=x).logits
        return F.cross_entropy(logits.view(-1, V), y.view(-1))

    f = torch.compile(loss_of) if compiled else loss_of
    times = []
    for i in range(steps + 1):
        x, y = (torch.from_numpy(a).long() for a in batch(cfg, B, T, i))
        t0 = time.perf_counter()
        loss = f(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return times[1:]


def prompt(cfg, T=32):
    return batch(cfg, 1, T, 123)[0]


def work_lldl_generate(cfg, new):
    m = lldl_model(cfg)
    p = prompt(cfg)
    m.generate(p[:, :4], 2, temperature=0.0)  # warm-up: first touches of the weights
    t0 = time.perf_counter()
    out = m.generate(p, new, temperature=0.0)
    dt = time.perf_counter() - t0
    assert out.shape == (1, p.shape[1] + new), out.shape
    return [dt]


def work_hf_generate(cfg, new):
    import torch
    model = torch_model(cfg).eval()
    p = torch.from_numpy(prompt(cfg)).long()
    kw = dict(do_sample=False, use_cache=True, pad_token_id=0)
    with torch.inference_mode():
        model.generate(p[:, :4], max_new_tokens=2, min_new_tokens=2, **kw)
        t0 = time.perf_counter()
        out = model.generate(p, max_new_tokens=new, min_new_tokens=new, **kw)
        dt = time.perf_counter() - t0
    assert tuple(out.shape) == (1, p.shape[1] + new), tuple(out.shape)
    return [dt]


def worker(args):
    cfg = QUICK if args.quick else FULL
    kind = args.worker
    if kind == "lldl_train":
        times = work_lldl_train(cfg, 4, args.seq, args.steps)
    elif kind == "lldl_llmc":
        times = work_lldl_train(cfg, 4, 64, args.steps)
    elif kind == "torch_train":
        times = work_torch_train(cfg, 4, args.seq, args.steps, compiled=False)
    elif kind == "compile_train":
        times = work_torch_train(cfg, 4, args.seq, args.steps, compiled=True)
    elif kind == "lldl_generate":
        times = work_lldl_generate(cfg, args.new_tokens)
    elif kind == "hf_generate":
        times = work_hf_generate(cfg, args.new_tokens)
    else:
        raise SystemExit(f"unknown worker {kind}")
    print(json.dumps({"times": times, "peak_rss_mib": peak_rss_mib()}))


# ---- the driver ------------------------------------------------------------------

def run_worker(kind, args):
    env = dict(os.environ)
    n = str(args.threads)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LLDL_NUM_THREADS"):
        env[k] = n
    env["TOKENIZERS_PARALLELISM"] = "false"
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--threads", n,
           "--steps", str(args.steps), "--seq", str(args.seq), "--new-tokens", str(args.new_tokens)]
    if args.quick:
        cmd.append("--quick")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"worker {kind} failed:\n{r.stderr[-4000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker")
    ap.add_argument("--quick", action="store_true", help="2-layer model, 2 rounds: a smoke run")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=5, help="rounds (fresh processes per row)")
    ap.add_argument("--steps", type=int, default=1, help="timed training steps per process")
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--compile-repeats", type=int, default=1,
                    help="torch.compile processes (each compiles for minutes)")
    ap.add_argument("--compile-steps", type=int, default=3, help="timed steps per compiled process")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if args.quick:
        args.repeats = min(args.repeats, 2)
    cfg = QUICK if args.quick else FULL
    rows = {k: {"step_s": [], "rss": []} for k in
            ("lldl_train", "torch_train", "compile_train", "lldl_llmc", "lldl_generate", "hf_generate")}

    errors = []

    def record(kind, res):
        t = res["times"]
        rows[kind]["step_s"].append(statistics.median(t))
        rows[kind]["rss"].append(res["peak_rss_mib"])
        print(f"  {kind:14s} {statistics.median(t):8.3f} s  peak RSS {res['peak_rss_mib']:7.0f} MiB",
              flush=True)
        save(results(rows, cfg, args, t_start, errors), args.out)

    t_start = time.time()
    for r in range(args.repeats):
        print(f"round {r + 1}/{args.repeats}", flush=True)
        pairs = [("lldl_train", "torch_train"), ("lldl_generate", "hf_generate")]
        for a, b in pairs:
            for kind in ((a, b) if r % 2 == 0 else (b, a)):
                record(kind, run_worker(kind, args))
        record("lldl_llmc", run_worker("lldl_llmc", args))
    args.steps = args.compile_steps
    for r in range(args.compile_repeats):
        try:
            record("compile_train", run_worker("compile_train", args))
        except RuntimeError as e:  # reported, not fatal: the other rows stand
            errors.append(str(e)[-2000:])
    res = results(rows, cfg, args, t_start, errors)
    print(json.dumps(res, indent=1))
    save(res, args.out)


def results(rows, cfg, args, t_start, errors):
    tokens = 4 * args.seq

    def tps(kind, n_tokens):
        return summary([n_tokens / s for s in rows[kind]["step_s"]]) if rows[kind]["step_s"] else None

    res = {
        "config": dict(cfg, quick=args.quick, threads=args.threads, repeats=args.repeats,
                       train_batch=[4, args.seq], compile_processes=args.compile_repeats,
                       compile_steps=args.compile_steps,
                       generate="1 x 32 prompt + %d new tokens, greedy" % args.new_tokens,
                       weights="independent random GPT-2 inits per framework"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_avg_end": os.getloadavg()},
        "train_tokens_per_s": {k: tps(k, tokens) for k in ("lldl_train", "torch_train", "compile_train")},
        "train_step_s": {k: summary(rows[k]["step_s"]) for k in ("lldl_train", "torch_train", "compile_train")
                         if rows[k]["step_s"]},
        "llmc_shape_step_s": summary(rows["lldl_llmc"]["step_s"]) if rows["lldl_llmc"]["step_s"] else None,
        "generate_tokens_per_s": {k: tps(k, args.new_tokens) for k in ("lldl_generate", "hf_generate")},
        "peak_rss_mib": {k: summary(v["rss"]) for k, v in rows.items() if v["rss"]},
        # Per round, in order: the load of a shared machine changes between
        # rounds, so the ratio within a round is the fairer comparison.
        "per_round_s": {k: v["step_s"] for k, v in rows.items() if v["step_s"]},
        "wall_s": time.time() - t_start,
        "errors": errors,
    }
    tt, gt, rss = res["train_tokens_per_s"], res["generate_tokens_per_s"], res["peak_rss_mib"]
    ratio = lambda a, b: a["median"] / b["median"] if a and b else None  # noqa: E731
    res["ratios"] = {
        "train_lldl_over_torch_eager": ratio(tt["lldl_train"], tt["torch_train"]),
        "train_lldl_over_torch_compile": ratio(tt["lldl_train"], tt["compile_train"]),
        "generate_lldl_over_hf": ratio(gt["lldl_generate"], gt["hf_generate"]),
        "train_rss_lldl_over_torch": ratio(rss.get("lldl_train"), rss.get("torch_train")),
        "generate_rss_lldl_over_hf": ratio(rss.get("lldl_generate"), rss.get("hf_generate")),
    }
    paired = lambda a, b: summary([y / x for x, y in zip(rows[a]["step_s"], rows[b]["step_s"])]) \
        if rows[a]["step_s"] and rows[b]["step_s"] else None  # noqa: E731
    res["paired_ratios"] = {"train_lldl_over_torch_eager": paired("lldl_train", "torch_train"),
                            "generate_lldl_over_hf": paired("lldl_generate", "hf_generate")}
    return res


def save(res, path):
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(res, f, indent=1)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
