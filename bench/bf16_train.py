"""bf16 mixed-precision training against float32 on the CPU (issue 18).

    .venv/bin/python bench/bf16_train.py                    # everything (about 15 min on 2 cores)
    .venv/bin/python bench/bf16_train.py --only step        # the 124M step only
    .venv/bin/python bench/bf16_train.py --only fortunes    # the loss curves only
    .venv/bin/python bench/bf16_train.py --quick            # a smoke run (2-layer model, 60 steps)

Writes bench/results/bf16_train/bf16_train.json (--out to change) and prints a table.

Rows:
  step      one AdamW step (forward, backward, clip 1.0, update; memory planning
            on) of GPT-2 124M at batch 4 x 256 tokens, configure_optimizer(precision=
            "fp32" or "bf16"). Each measurement is one fresh process (thread variables
            set in its environment before the import), timing --steps steps after one
            warm-up step and reporting their median; the precisions alternate order from
            round to round; medians and ranges over --repeats rounds.
  fortunes  the README's fortunes GPT (lldl-gpt train --tokenizer bpe --bpe-vocab 512,
            4 layers, 128 wide, batch 16 x 128) for --fortune-steps steps in each
            precision, same seed, the two runs side by side on one thread each: the validation losses at every evaluation and the
            training loss averaged over the last 100 steps, bf16 relative to fp32.
  gemm      build/bench_bf16_gemm: every matrix product of that step, bf16_gemm
            against the float32 path's product(), GFLOP/s (its output is saved as
            bench_bf16_gemm.txt).
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FULL = dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab=50257)
QUICK = dict(n_layer=2, n_head=12, n_embd=768, n_positions=1024, vocab=50257)


def work_step(cfg, precision, B, T, steps):
    import numpy as np
    import cppapi
    c = cppapi.GPTConfig(cfg["vocab"], cfg["n_positions"], cfg["n_layer"], cfg["n_head"], cfg["n_embd"])
    m = cppapi.GPT(c, seed=1)
    m.set_memory_planning(True)
    m.configure_optimizer(lr=1e-4, weight_decay=0.1, betas=(0.9, 0.95), precision=precision)
    rng = np.random.default_rng(0)
    times, losses = [], []
    for _ in range(steps + 1):
        x = rng.integers(0, cfg["vocab"], size=(B, T + 1))
        t0 = time.perf_counter()
        losses.append(float(m.loss(x[:, :-1].astype(np.int32), x[:, 1:].astype(np.int32))))
        m.backward()
        m.clip_grad_norm(1.0)
        m.step()
        m.zero_grad()
        times.append(time.perf_counter() - t0)
    return dict(step_s=statistics.median(times[1:]), losses=losses)


def spawn(args, extra):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=args.pythonpath)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker"] + extra
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def summary(xs):
    return dict(median=statistics.median(xs), min=min(xs), max=max(xs), n=len(xs))


def bench_step(args, cfg):
    runs = {"fp32": [], "bf16": []}
    first_losses = {}
    for r in range(args.repeats):
        order = ["fp32", "bf16"] if r % 2 == 0 else ["bf16", "fp32"]
        for p in order:
            res = spawn(args, ["step", "--precision", p, "--steps", str(args.steps),
                               "--model", "quick" if args.quick else "full"])
            runs[p].append(res["step_s"])
            first_losses.setdefault(p, res["losses"])
            print(f"  round {r + 1} {p}: {res['step_s']:.3f} s/step", flush=True)
    s = {p: summary(v) for p, v in runs.items()}
    return dict(batch=4, seq=256, step_s=s, speedup=s["fp32"]["median"] / s["bf16"]["median"],
                losses=first_losses)


def read_log(path):
    steps, losses = [], []
    with open(path) as f:
        for line in f:
            s, l, _ = line.split()
            steps.append(int(s))
            losses.append(float(l))
    return losses


def bench_fortunes(args):
    gpt = os.path.join(args.build, "lldl-gpt")
    out = {}
    tmp = tempfile.mkdtemp(prefix="lldl_bf16_fortunes_")  # checkpoints and loss logs; the JSON keeps the losses
    # Both precisions at once, one thread each: the loss curves are the
    # measurement here, not the speed, and the pair shares whatever load the
    # machine has.
    procs = {}
    for p in ["fp32", "bf16"]:
        log = os.path.join(tmp, f"loss_{p}.txt")
        if os.path.exists(log):
            os.remove(log)
        cmd = [gpt, "train", "--data", "/usr/share/games/fortunes", "--tokenizer", "bpe",
               "--bpe-vocab", "512", "--steps", str(args.fortune_steps), "--eval-every", "250",
               "--out", os.path.join(tmp, f"gpt_{p}.safetensors"), "--loss-log", log,
               "--precision", p, "--threads", "1"]
        procs[p] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, OMP_NUM_THREADS="1")), time.perf_counter(), log)
    for p, (proc, t0, log) in procs.items():
        stdout, stderr = proc.communicate()
        secs = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"lldl-gpt train --precision {p} failed: {stderr[-2000:]}")
        # Progress lines end in "val X" at each evaluation (every 250 steps).
        vals = {}
        for line in stderr.splitlines():
            m = re.search(r"step\s+(\d+)/\d+ .* val ([0-9.]+)", line.split("\r")[-1])
            # Every later line repeats the last "val": keep the evaluations' own.
            if m and (int(m.group(1)) % 250 == 0 or int(m.group(1)) == args.fortune_steps):
                vals[int(m.group(1))] = float(m.group(2))
        out[p] = dict(seconds=secs, train_loss=read_log(log), val_loss=vals,
                      summary=stdout.strip().splitlines()[0])
        print(f"  fortunes {p}: {secs:.0f} s", flush=True)
    n = min(100, args.fortune_steps)
    tail = {p: statistics.mean(out[p]["train_loss"][-n:]) for p in out}
    out["train_tail_mean"] = tail
    out["val_rel_diff"] = {k: (out["bf16"]["val_loss"][k] - v) / v
                           for k, v in out["fp32"]["val_loss"].items() if k in out["bf16"]["val_loss"]}
    out["train_tail_rel_diff"] = (tail["bf16"] - tail["fp32"]) / tail["fp32"]
    # The curves smoothed over 50 steps, compared from step 50 on.
    def smooth(xs):
        return [statistics.mean(xs[i - 50:i]) for i in range(50, len(xs) + 1)]
    a, b = smooth(out["fp32"]["train_loss"]), smooth(out["bf16"]["train_loss"])
    out["curve_max_rel_diff"] = max(abs(y - x) / x for x, y in zip(a, b)) if a else None
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs="?", const="step")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--model", default="full")
    ap.add_argument("--only", choices=["gemm", "step", "fortunes"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fortune-steps", type=int, default=1000)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--results", default=os.path.join(HERE, "results", "bf16_train"))
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.worker:
        cfg = QUICK if args.model == "quick" else FULL
        print(json.dumps(work_step(cfg, args.precision, 4, 256, args.steps)))
        return
    args.pythonpath = os.path.join(args.build, "python")
    if args.quick:
        args.repeats, args.steps, args.fortune_steps = 2, 1, 60
    os.makedirs(args.results, exist_ok=True)
    res = dict(machine=platform.processor() or platform.machine(), threads=args.threads,
               date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), quick=args.quick)
    if args.only in (None, "gemm") and not args.quick:
        g = subprocess.run([os.path.join(args.build, "bench_bf16_gemm"), str(args.threads)],
                           check=True, capture_output=True, text=True).stdout
        with open(os.path.join(args.results, "bench_bf16_gemm.txt"), "w") as fh:
            fh.write(g)
        print(g, flush=True)
        res["gemm_sum_speedup"] = float(g.strip().splitlines()[-1].split()[-1])
    if args.only in (None, "step"):
        print("124M step at 4 x 256, fp32 vs bf16:", flush=True)
        res["step"] = bench_step(args, QUICK if args.quick else FULL)
        s = res["step"]["step_s"]
        print(f"  fp32 {s['fp32']['median']:.3f} s [{s['fp32']['min']:.3f}-{s['fp32']['max']:.3f}]  "
              f"bf16 {s['bf16']['median']:.3f} s [{s['bf16']['min']:.3f}-{s['bf16']['max']:.3f}]  "
              f"speed-up {res['step']['speedup']:.2f}x", flush=True)
    if args.only in (None, "fortunes"):
        print(f"fortunes GPT, {args.fortune_steps} steps, fp32 vs bf16:", flush=True)
        f = res["fortunes"] = bench_fortunes(args)
        print(f"  last-100-step train loss: fp32 {f['train_tail_mean']['fp32']:.4f}  bf16 "
              f"{f['train_tail_mean']['bf16']:.4f}  rel diff {100 * f['train_tail_rel_diff']:+.2f}%  "
              f"smoothed curve max rel diff {100 * (f['curve_max_rel_diff'] or 0):.2f}%")
        for k, d in sorted(f["val_rel_diff"].items()):
            print(f"  val loss at step {k}: fp32 {f['fp32']['val_loss'][k]:.4f}  bf16 "
                  f"{f['bf16']['val_loss'][k]:.4f}  rel diff {100 * d:+.2f}%")
    name = "bf16_train" + ("_" + args.only if args.only else "") + ("_quick" if args.quick else "")
    out = args.out or os.path.join(args.results, name + ".json")
    with open(out, "w") as fh:
        json.dump(res, fh, indent=1)
    print("wrote", out)


if __name__ == "__main__":
    main()
