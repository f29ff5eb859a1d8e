#!/usr/bin/env python3
"""Data parallel on this machine (issue 15): 1 rank x 2 threads against
2 ranks x 1 thread, for the char GPT (tokens/s) and the Fashion-MNIST CNN
(images/s), with the gradient all-reduce's time per step and the fraction of
it hidden under backward (GradSync's figures, taken from the bucket events).

  gpt  bench/vs_pytorch.py's char GPT (4 layers, 4 heads, 128 wide, block 128,
       vocabulary 96), AdamW, 16 windows per step in all (8 per rank at 2
       ranks), stepped through the graph API with cppapi.dist.GradSync
  cnn  the Fashion-MNIST CNN of examples/fashion_cnn.py through Trainer.fit,
       Adam, 64 images per step in all, on the first --cnn-images images

Gradient buckets of --bucket-mb (0.5 MiB: about 7 per GPT step, 3 per CNN
step). Each configuration runs in its own `mpirun -np N` job with OMP_NUM_THREADS
set before Python starts; 5 repeats by default, the order alternating per
repeat; medians with [min-max]. One command:

  .venv/bin/python bench/dist_bench.py [--repeats 5] [--quick]

writes bench/results/cpu-2core/dist_bench.json (--out) and prints the table.
A worker (--worker gpt|cnn) is this script under mpirun.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONFIGS = [(1, 2), (2, 1)]  # (ranks, threads per rank)


def mpirun_command(ranks):
    """scripts/mpirun.sh: OpenMPI on one machine, also as root, shared memory only."""
    if not shutil.which("mpirun"):
        sys.exit("dist_bench: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)")
    return [os.path.join(ROOT, "scripts", "mpirun.sh"), "-np", str(ranks)]


# ---- workers (one rank of an mpirun job) ----------------------------------------

def worker_gpt(a, c):
    import numpy as np
    rank, world = c.dist.rank(), c.dist.world_size()
    m = c.GPT(c.GPTConfig(vocab_size=96, block_size=128, n_layer=4, n_head=4, n_embd=128), seed=1)
    m.configure_optimizer(lr=1e-3, weight_decay=0.1)
    c.dist.broadcast_params(m)
    sync = c.dist.GradSync(m)
    per = a.batch // world
    rng = np.random.default_rng(0)
    data = rng.integers(0, 96, size=(a.warmup + a.steps, a.batch, 129), dtype=np.int32)

    def step(i):
        x = data[i, rank * per:(rank + 1) * per]
        m.loss(np.ascontiguousarray(x[:, :-1]), np.ascontiguousarray(x[:, 1:]))
        m.backward()
        sync.finish()
        m.clip_grad_norm(1.0)
        m.step()
        m.zero_grad()

    for i in range(a.warmup):
        step(i)
    before = sync.stats()
    c.dist.barrier()
    t0 = time.perf_counter()
    for i in range(a.warmup, a.warmup + a.steps):
        step(i)
    c.dist.barrier()
    dt = time.perf_counter() - t0
    s = sync.stats()
    return {"rate": a.steps * a.batch * 128 / dt, "unit": "tokens/s", "step_s": dt / a.steps,
            "comm_s": (s["comm_s"] - before["comm_s"]) / a.steps,
            "exposed_s": (s["exposed_s"] - before["exposed_s"]) / a.steps,
            "buckets_per_step": (s["buckets"] - before["buckets"]) / a.steps}


def worker_cnn(a, c):
    world = c.dist.world_size()
    x, y = c.load_fashion_mnist("train", limit=a.cnn_images)
    L, A = c.LayerType, c.ActivationType
    nn = c.NeuralNetwork2([
        c.Layer2(L.Conv2D, 16, A.ReLU, kernel=5, padding=2), c.Layer2(L.MaxPool2D, kernel=2),
        c.Layer2(L.Conv2D, 32, A.ReLU, kernel=5, padding=2), c.Layer2(L.MaxPool2D, kernel=2),
        c.Layer2(L.Flatten), c.Layer2(L.Dense, 128, A.ReLU), c.Layer2(L.Dense, 10, A.Linear),
    ], c.LossType.CROSS_ENTROPY, input_shape=(1, 28, 28))
    t = c.Trainer(nn, c.OptimiserType.Adam, 1e-3)
    per = 64 // world
    t.fit(x[:256], y[:256], epochs=1, eval_every=1, batch_size=per, verbose=0)  # build, warm up
    h = t.fit(x, y, epochs=1, eval_every=1, batch_size=per, restart=False, verbose=0)
    s = t.dist_stats()
    steps = max(s["steps"], 1)
    return {"rate": h["samples_per_s"][-1], "unit": "images/s", "step_s": 64 / h["samples_per_s"][-1],
            "comm_s": s["comm_s"] / steps, "exposed_s": s["exposed_s"] / steps,
            "buckets_per_step": s["buckets"] / steps}


def worker(a):
    import cppapi as c
    c.dist.init()
    out = (worker_gpt if a.worker == "gpt" else worker_cnn)(a, c)
    if c.dist.rank() == 0:
        out.update(ranks=c.dist.world_size(), threads=c.get_num_threads())
        with open(a.json, "w") as f:
            json.dump(out, f)


# ---- the driver ------------------------------------------------------------------

def run_one(a, workload, ranks, threads):
    out = os.path.join(a.tmp, f"{workload}_{ranks}x{threads}.json")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1", LLDL_DIST_TIMEOUT="120",
               LLDL_DIST_BUCKET_MB=str(a.bucket_mb))
    cmd = mpirun_command(ranks) + [sys.executable, os.path.abspath(__file__), "--worker", workload,
                                   "--json", out, "--steps", str(a.steps), "--warmup", str(a.warmup),
                                   "--cnn-images", str(a.cnn_images), "--batch", str(a.batch)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"dist_bench: {' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    with open(out) as f:
        return json.load(f)


def summary(vals):
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def load_avg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 repeats, fewer steps and images (a smoke run)")
    ap.add_argument("--workloads", default="gpt,cnn")
    ap.add_argument("--steps", type=int, default=20, help="timed GPT steps")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16, help="GPT windows per step over all ranks")
    ap.add_argument("--cnn-images", type=int, default=4096)
    ap.add_argument("--bucket-mb", type=float, default=0.5,
                    help="gradient bucket size (LLDL_DIST_BUCKET_MB): several buckets per step, so that "
                         "early ones can overlap the rest of backward")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "cpu-2core", "dist_bench.json"))
    ap.add_argument("--worker", choices=["gpt", "cnn"], help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", default="/tmp", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a)
    if a.quick:
        a.repeats, a.steps, a.warmup, a.cnn_images = min(a.repeats, 2), 5, 1, 1024
    if a.repeats < 1:
        sys.exit("dist_bench: --repeats must be >= 1")
    workloads = a.workloads.split(",")
    cells = {(w, r, t): [] for w in workloads for r, t in CONFIGS}
    start = time.time()
    load0 = load_avg()
    for rep in range(a.repeats):
        order = CONFIGS if rep % 2 == 0 else CONFIGS[::-1]
        for w in workloads:
            for r, t in order:
                res = run_one(a, w, r, t)
                cells[(w, r, t)].append(res)
                print(f"repeat {rep + 1}/{a.repeats} {w} {r} rank(s) x {t} thread(s): "
                      f"{res['rate']:.0f} {res['unit']}, all-reduce {res['comm_s'] * 1e3:.2f} ms/step, "
                      f"exposed {res['exposed_s'] * 1e3:.2f} ms/step", flush=True)
    rows = []
    for (w, r, t), rs in cells.items():
        comm = [x["comm_s"] for x in rs]
        exposed = [x["exposed_s"] for x in rs]
        hidden = [1 - e / c if c > 0 else 0.0 for c, e in zip(comm, exposed)]
        rows.append({"workload": w, "ranks": r, "threads": t, "unit": rs[0]["unit"],
                     "rate": summary([x["rate"] for x in rs]), "step_s": summary([x["step_s"] for x in rs]),
                     "comm_s": summary(comm), "exposed_s": summary(exposed), "hidden_fraction": summary(hidden),
                     "buckets_per_step": rs[0]["buckets_per_step"], "runs": rs})
    result = {"schema": "lldl-dist-bench/1", "repeats": a.repeats, "quick": a.quick, "steps": a.steps,
              "bucket_mb": a.bucket_mb,
              "gpt_batch": a.batch, "cnn_images": a.cnn_images, "wall_s": time.time() - start,
              "load_avg_start": load0, "load_avg_end": load_avg(), "cpus": os.cpu_count(), "rows": rows}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\n{a.repeats} repeats, medians [min-max], load average {load0} -> {load_avg()}; wrote {a.out}\n")
    print("| workload | ranks x threads | rate | all-reduce per step | exposed per step | hidden under backward |")
    print("|---|---|---|---|---|---|")
    fmt = lambda s, k=1: f"{s['median'] * k:.4g} [{s['min'] * k:.4g}-{s['max'] * k:.4g}]"
    for row in rows:
        print(f"| {row['workload']} | {row['ranks']} x {row['threads']} | {fmt(row['rate'])} {row['unit']} | "
              f"{fmt(row['comm_s'], 1e3)} ms | {fmt(row['exposed_s'], 1e3)} ms | {fmt(row['hidden_fraction'])} |")
    for w in workloads:
        one = next(r for r in rows if r["workload"] == w and r["ranks"] == 1)
        two = next(r for r in rows if r["workload"] == w and r["ranks"] == 2)
        print(f"{w}: 2 ranks x 1 thread / 1 rank x 2 threads = {two['rate']['median'] / one['rate']['median']:.2f}x")


if __name__ == "__main__":
    main()
