"""GPT-2 124M on one GPU: lldl (the lldl-gpt binary) against PyTorch on the same device.

    python3 bench/gpt2_gpu_vs_torch.py --lldl-gpt build-gpu-pack/lldl-gpt --out $OUT/gpt2_gpu_vs_torch.json
    python3 bench/gpt2_gpu_vs_torch.py --device cpu --tiny --no-torch   # the lldl side, smoke run on a CPU

Rows (every cell one fresh process; the frameworks alternate order from round
to round;
per process the median step after the first, then the median and range over
the processes of a cell):
  train      GPT-2 124M, batch 8 x 1024 tokens, one AdamW step (forward,
             backward, gradient-norm clip 1.0, update; the loss read back
             every step), tokens/s, in two precisions:
               tf32  float32 weights and activations, GEMMs in TF32
                     (lldl-gpt --tf32; torch allow_tf32 for matmul and cudnn)
               bf16  float32 weights, GEMMs in bf16 (lldl-gpt --precision bf16:
                     bf16 copies of the GEMM operands, activations float32;
                     torch: autocast(bfloat16))
             lldl: lldl-gpt train --init gpt2-124m --device cuda (memory
             planning on, clipping fused into the multi-tensor AdamW);
             lldl_graph: the same with --cuda-graph (each step a replay of
             one captured CUDA graph, memory planning off);
             torch eager: transformers GPT2LMHeadModel with
             attn_implementation="sdpa" (F.scaled_dot_product_attention),
             dropout 0, fused AdamW; torch.compile: the same model's loss
             compiled (default mode), timed after its compiling steps.
  generate   128 new tokens after a 32-token prompt, batch 1, greedy, KV
             cache, tokens/s over the whole call (prefill included): lldl-gpt
             sample --device cuda (logits copied to the host per token)
             against transformers generate(use_cache=True), float32 + TF32.

Device time is scarce, so the run keeps to --budget seconds: cells are
scheduled round by round (lldl and eager first, torch.compile after), each
is cut at the --deadline, and one that would start within 20 s of it is
skipped and listed as such. Any
failing cell is recorded with its error; the others go on.
"""
import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FULL = dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab=50257)
TINY = dict(n_layer=2, n_head=2, n_embd=64, n_positions=64, vocab=256)  # the byte tokenizer's


# ---- torch workers (one process each) --------------------------------------------

def torch_model(cfg, device):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(1)
    c = GPT2Config(n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"],
                   n_positions=cfg["n_positions"], vocab_size=cfg["vocab"], resid_pdrop=0.0,
                   embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel._from_config(c, attn_implementation="sdpa").float().to(device)


def set_precision(torch, precision):
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def sync(torch, device):
    if device == "cuda":
        torch.cuda.synchronize()


def work_torch_train(a):
    import contextlib
    import torch
    import torch.nn.functional as F
    cfg = TINY if a.tiny else FULL
    set_precision(torch, a.precision)
    model = torch_model(cfg, a.device)
    model.train()
    kw = dict(lr=1e-4, weight_decay=0.1, betas=(0.9, 0.95))
    try:
        opt = torch.optim.AdamW(model.parameters(), fused=True, **kw)
    except (RuntimeError, TypeError):
        opt = torch.optim.AdamW(model.parameters(), foreach=True, **kw)
    V, B, T = cfg["vocab"], a.batch, a.seq
    amp = (torch.autocast(a.device, dtype=torch.bfloat16) if a.precision == "bf16"
           else contextlib.nullcontext())

    def loss_of(x, y):
        with amp:
            logits = model(input_ids=x).logits
        return F.cross_entropy(logits.float().reshape(-1, V), y.reshape(-1))

    f = torch.compile(loss_of) if a.compile else loss_of
    g = torch.Generator().manual_seed(0)
    times, first = [], None
    warm = a.compile_warmup if a.compile else 1
    for i in range(warm + a.steps):
        xy = torch.randint(0, V, (B, T + 1), generator=g)
        x, y = xy[:, :-1].to(a.device), xy[:, 1:].to(a.device)
        sync(torch, a.device)
        t0 = time.perf_counter()
        loss = f(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()  # as lldl: the loss read back every step
        dt = time.perf_counter() - t0
        if i == 0:
            first = dt
        if i >= warm:
            times.append(dt)
    return {"step_s": statistics.median(times), "step_min": min(times), "step_max": max(times),
            "steps": len(times), "first_step_s": first,
            "tokens_per_s": B * T / statistics.median(times)}


def work_torch_generate(a):
    import torch
    cfg = TINY if a.tiny else FULL
    set_precision(torch, "tf32")
    model = torch_model(cfg, a.device).eval()
    g = torch.Generator().manual_seed(123)
    p = torch.randint(0, cfg["vocab"], (1, 32), generator=g).to(a.device)
    kw = dict(do_sample=False, use_cache=True, pad_token_id=0)
    with torch.inference_mode():
        model.generate(p[:, :4], max_new_tokens=2, min_new_tokens=2, **kw)  # warm-up
        sync(torch, a.device)
        t0 = time.perf_counter()
        out = model.generate(p, max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, **kw)
        sync(torch, a.device)
        dt = time.perf_counter() - t0
    assert tuple(out.shape) == (1, 32 + a.new_tokens), tuple(out.shape)
    return {"seconds": dt, "tokens_per_s": a.new_tokens / dt}


# ---- lldl (the lldl-gpt binary) ------------------------------------------------------

def corpus(path, n_entries=200, words=800, seed=0):
    # Random words, fortune-style '%' entries, so that the split has a
    # validation part; speed does not depend on the text.
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    with open(path, "w") as f:
        for _ in range(n_entries):
            f.write(" ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(2, 8)))
                             for _ in range(words)))
            f.write("\n%\n")


def lldl_flags(a, precision):
    f = ["--device", a.device]
    if a.device == "cuda":
        f += ["--tf32"] if precision == "tf32" else ["--precision", "bf16"]
    return f


def model_flags(a):
    if a.tiny:
        c = TINY
        return ["--n-layer", str(c["n_layer"]), "--n-head", str(c["n_head"]), "--n-embd", str(c["n_embd"]),
                "--block", str(a.seq)]
    return ["--init", "gpt2-124m", "--block", str(a.seq)]


def run_lldl_train(a, precision, work, graph=False):
    ckpt = os.path.join(work, f"lldl_{precision}{'_graph' if graph else ''}.safetensors")
    cmd = [a.lldl_gpt, "train", "--data", a.corpus, "--tokenizer", "byte", *model_flags(a),
           "--batch", str(a.batch), "--steps", str(a.steps + 1), "--warmup", "1", "--lr", "1e-4",
           "--grad-clip", "1.0", "--eval-every", "0", "--eval-batches", "1", "--out", ckpt,
           "--quiet", *lldl_flags(a, precision), *(["--cuda-graph"] if graph else [])]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout_now)
    if r.returncode != 0:
        raise RuntimeError(f"lldl-gpt train exit {r.returncode}: {r.stderr[-2000:]}")
    line = next(l for l in r.stdout.splitlines() if l.startswith("steady:"))
    # "steady: X tokens/s (median step M s, min A, max B, over N steps after the first)"
    tps = float(line.split()[1])
    parts = line.split("(")[1]
    med = float(parts.split("median step ")[1].split()[0])
    lo = float(parts.split("min ")[1].split(",")[0])
    hi = float(parts.split("max ")[1].split(",")[0])
    if graph:
        os.remove(ckpt)
    else:
        os.replace(ckpt, os.path.join(work, "lldl_model.safetensors"))  # for the generation row
    return {"step_s": med, "step_min": lo, "step_max": hi, "steps": a.steps, "tokens_per_s": tps,
            "device_line": next((l for l in r.stderr.splitlines() if l.startswith("device:")), "")}


def run_lldl_generate(a, work):
    ckpt = os.path.join(work, "lldl_model.safetensors")
    if not os.path.exists(ckpt):
        raise RuntimeError("no lldl checkpoint (every lldl training cell failed)")
    rng = random.Random(123)
    prompt = "".join(rng.choice("abcdefghij ") for _ in range(32))  # 32 byte tokens
    cmd = [a.lldl_gpt, "sample", "--ckpt", ckpt, "--prompt", prompt, "--tokens", str(a.new_tokens),
           "--temperature", "0", "--device", a.device]
    if a.device == "cuda":
        cmd.append("--tf32")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout_now)
    if r.returncode != 0:
        raise RuntimeError(f"lldl-gpt sample exit {r.returncode}: {r.stderr[-2000:]}")
    line = next(l for l in r.stderr.splitlines() if l.startswith("generated "))
    secs = float(line.split(" in ")[1].split()[0])
    return {"seconds": secs, "tokens_per_s": a.new_tokens / secs}


# ---- the driver ------------------------------------------------------------------

def run_torch(kind, a, precision="tf32", compiled=False):
    env = dict(os.environ)
    n = str(a.threads)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = n
    env["TOKENIZERS_PARALLELISM"] = "false"
    cmd = [a.python, os.path.abspath(__file__), "--worker", kind, "--precision", precision,
           "--device", a.device, "--steps", str(a.steps), "--batch", str(a.batch), "--seq", str(a.seq),
           "--new-tokens", str(a.new_tokens), "--compile-warmup", str(a.compile_warmup)]
    if compiled:
        cmd.append("--compile")
    if a.tiny:
        cmd.append("--tiny")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True,
                       timeout=min(a.timeout_now, a.compile_timeout if compiled else a.cell_timeout))
    if r.returncode != 0:
        raise RuntimeError(f"worker {kind} exit {r.returncode}: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker")
    ap.add_argument("--lldl-gpt", default=os.path.join(ROOT, "build-gpu-pack", "lldl-gpt"))
    ap.add_argument("--python", default=sys.executable, help="the interpreter with torch")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--tiny", action="store_true", help="a 2-layer 64-wide model: a smoke run")
    ap.add_argument("--no-torch", action="store_true", help="lldl rows only")
    ap.add_argument("--precision", default="tf32", choices=["tf32", "bf16"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--repeats", type=int, default=2, help="rounds of the lldl and eager cells")
    ap.add_argument("--compile-repeats", type=int, default=1, help="compiled processes per precision")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per process (after the first)")
    ap.add_argument("--compile-warmup", type=int, default=3, help="untimed steps of a compiled process")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--deadline", type=float, default=230.0,
                    help="seconds for the whole run: a cell is cut at it, and none starts within 20 s of it")
    ap.add_argument("--cell-timeout", type=float, default=120.0)
    ap.add_argument("--compile-timeout", type=float, default=150.0)
    ap.add_argument("--out", default="")
    a = ap.parse_args()

    if a.worker:
        fn = {"torch_train": work_torch_train, "torch_generate": work_torch_generate}[a.worker]
        print(json.dumps(fn(a)))
        return

    start = time.perf_counter()
    work = tempfile.mkdtemp(prefix="lldl_gpt2_gpu_")
    a.corpus = os.path.join(work, "corpus.txt")
    corpus(a.corpus)
    a.lldl_gpt = os.path.abspath(a.lldl_gpt)
    precisions = ["tf32", "bf16"]
    cells = {}  # name -> list of results
    errors, skipped = {}, []

    def attempt(name, fn):
        left = a.deadline - (time.perf_counter() - start)
        if left < 20:
            skipped.append(name)
            print(f"skip {name}: {left:.0f} s left of the {a.deadline:.0f} s deadline", flush=True)
            return
        a.timeout_now = min(a.cell_timeout, left) if "compile" not in name else left
        t0 = time.perf_counter()
        try:
            r = fn()
            cells.setdefault(name, []).append(r)
            print(f"{name}: {json.dumps(r)} ({time.perf_counter() - t0:.1f} s)", flush=True)
        except Exception as e:  # one failing cell must not lose the others
            errors.setdefault(name, []).append(str(e)[-1500:])
            print(f"{name}: FAILED ({time.perf_counter() - t0:.1f} s): {str(e)[-600:]}", flush=True)

    # Priority under the deadline: a first round of every cheap cell, then
    # torch.compile in bf16, then the further rounds, then compile in tf32.
    def train_round(r):
        order = []
        for p in precisions:
            row = [(f"train/{p}/lldl", lambda p=p: run_lldl_train(a, p, work))]
            if not a.no_torch:
                row.append((f"train/{p}/torch_eager", lambda p=p: run_torch("torch_train", a, p)))
            order += row if r % 2 == 0 else row[::-1]
        return order

    def gen_round(r):
        gen = [("generate/lldl", lambda: run_lldl_generate(a, work))]
        if not a.no_torch:
            gen.append(("generate/torch_hf", lambda: run_torch("torch_generate", a)))
        return gen if r % 2 == 0 else gen[::-1]

    def compile_cells(p):
        if a.no_torch:
            return []
        return [(f"train/{p}/torch_compile", lambda: run_torch("torch_train", a, p, True))
                for _ in range(a.compile_repeats)]

    # --cuda-graph (each step one replay of a captured CUDA graph; the
    # steady median leaves out the eager warm-up step, and the capture step
    # is one of the rest): one cell per precision, after the first round.
    graph_cells = [(f"train/{p}/lldl_graph", lambda p=p: run_lldl_train(a, p, work, graph=True))
                   for p in precisions]
    plan = train_round(0) + gen_round(0) + graph_cells + compile_cells("bf16")
    for r in range(1, a.repeats):
        plan += train_round(r) + gen_round(r)
    plan += compile_cells("tf32")
    for name, fn in plan:
        attempt(name, fn)

    result = {
        "what": "GPT-2 124M training (batch %d x %d) and KV-cache generation, lldl vs PyTorch on one device"
                % (a.batch, a.seq) if not a.tiny else "tiny smoke run",
        "device": a.device, "host": platform.node(), "cpu_count": os.cpu_count(),
        "steps_per_process": a.steps, "repeats": a.repeats, "compile_repeats": a.compile_repeats,
        "cells": {k: {"tokens_per_s": summary([c["tokens_per_s"] for c in v]), "runs": v}
                  for k, v in cells.items()},
        "errors": errors, "skipped": skipped, "seconds": time.perf_counter() - start,
    }
    for p in precisions:
        l = cells.get(f"train/{p}/lldl")
        for peer in ("torch_eager", "torch_compile"):
            t = cells.get(f"train/{p}/{peer}")
            if l and t:
                result[f"ratio/train/{p}/lldl_over_{peer}"] = (
                    statistics.median(c["tokens_per_s"] for c in l) /
                    statistics.median(c["tokens_per_s"] for c in t))
        g = cells.get(f"train/{p}/lldl_graph")
        if l and g:
            result[f"ratio/train/{p}/lldl_graph_over_lldl"] = (
                statistics.median(c["tokens_per_s"] for c in g) /
                statistics.median(c["tokens_per_s"] for c in l))
    if cells.get("generate/lldl") and cells.get("generate/torch_hf"):
        result["ratio/generate/lldl_over_hf"] = (
            statistics.median(c["tokens_per_s"] for c in cells["generate/lldl"]) /
            statistics.median(c["tokens_per_s"] for c in cells["generate/torch_hf"]))
    try:
        import torch
        result["torch"] = torch.__version__
        if torch.cuda.is_available():
            result["gpu"] = torch.cuda.get_device_name(0)
    except Exception as e:
        result["torch"] = f"not importable: {e}"
    text = json.dumps(result, indent=1)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)
    for f in os.listdir(work):
        os.remove(os.path.join(work, f))
    os.rmdir(work)


if __name__ == "__main__":
    main()
