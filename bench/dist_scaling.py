#!/usr/bin/env python3
"""The alpha-beta scaling model of data-parallel training (issue 15).

Fits, from bench_mpi_comm's CSV (MPI ping-pong and all-reduce on this machine):
  alpha  one message's latency (s)            ping-pong t(m) = alpha + m / beta
  beta   bytes per second of one transfer     (least squares on relative error)
  gamma  seconds per byte of the reduction    from the measured 2-rank all-reduce,
                                              t = 2 alpha + m / beta + m gamma / 2
and predicts a ring all-reduce of m bytes over N nodes (reduce-scatter then
all-gather: 2(N-1) steps, each sending m/N bytes and the first N-1 summing them):
  T(N, m) = 2 (N-1) (alpha + m / (N beta)) + (N-1)/N m gamma
per bucket of the gradient (each bucket pays the latency term once).

Fed with the gradient sizes (float32, one per parameter) of the project's GPT
(bench/vs_pytorch.py's char GPT: 4 layers, 4 heads, 128 wide, block 128,
vocabulary 96) and GPT-2 124M, and with their measured step times on this
machine (bench/results/cpu-2core/vs_pytorch.json and gpt2_vs_torch.json), it
predicts the weak-scaling efficiency (per-node batch fixed)
  E(N) = t_step / (t_step + exposed communication)
at 2..64 nodes for 10 and 100 Gbit/s links, two bounds: nothing hidden
(exposed = T) and the all-reduce overlapping all of backward (exposed =
max(0, T - backward), backward taken as --bwd-fraction of the step).
The links use their nominal rate as beta and an assumed latency
(--alpha-10g-us, --alpha-100g-us); the measured local alpha, beta, gamma fit
the measured points, which the plot shows beside the model.

  python bench/dist_scaling.py [--csv bench/results/cpu-2core/mpi_comm_np2.csv]
Writes dist_scaling.json, dist_scaling.md and dist_scaling.png beside the CSV
(or under --out) and prints the table.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results", "cpu-2core")
NODES = [2, 4, 8, 16, 32, 64]


def gpt_params(vocab, block, n_layer, n_embd):
    """Parameters of lldl's GPT (GPT-2 layout, LM head tied to wte): embeddings,
    per block two LayerNorms (4C), c_attn (3C^2 + 3C), c_proj (C^2 + C), fc
    (4C^2 + 4C), mlp proj (4C^2 + C), and the final LayerNorm (2C)."""
    C = n_embd
    return vocab * C + block * C + n_layer * (12 * C * C + 13 * C) + 2 * C


def read_csv(path):
    rows = []
    with open(path) as f:
        head = f.readline().strip().split(",")
        for line in f:
            r = dict(zip(head, line.strip().split(",")))
            rows.append({"kind": r["kind"], "ranks": int(r["ranks"]), "bytes": int(r["bytes"]),
                         "median_s": float(r["median_us"]) * 1e-6, "min_s": float(r["min_us"]) * 1e-6,
                         "max_s": float(r["max_us"]) * 1e-6})
    if not rows:
        sys.exit(f"dist_scaling: {path} holds no measurements")
    return rows


def fit_alpha_beta(pp):
    """alpha + m/beta through the ping-pong medians, each point weighted by
    1/t so that the microsecond sizes count as much as the megabyte ones."""
    m = np.array([r["bytes"] for r in pp], float)
    t = np.array([r["median_s"] for r in pp], float)
    A = np.stack([np.ones_like(m), m], 1) / t[:, None]
    (alpha, inv_beta), *_ = np.linalg.lstsq(A, np.ones_like(t), rcond=None)
    return max(alpha, 0.0), 1.0 / inv_beta


def fit_gamma(ar, alpha, beta, around):
    """The reduction's seconds per byte: what the measured all-reduce costs
    beyond alpha-beta's transfers, t - T_ab, against (N-1)/N m (relative least
    squares), on the measured sizes within 4x of `around` (a model's bucket):
    the sums run at cache speed for small messages and at memory speed for
    large ones, so one gamma for all sizes fits neither."""
    n = ar[0]["ranks"]
    near = [r for r in ar if around / 4 <= r["bytes"] <= around * 4]
    ar = near or [min(ar, key=lambda r: abs(math.log(r["bytes"] / around)))]
    m = np.array([r["bytes"] for r in ar], float)
    t = np.array([r["median_s"] for r in ar], float)
    transfer = 2 * (n - 1) * (alpha + m / (n * beta))
    x = (n - 1) / n * m
    gamma = float(np.sum(x * (t - transfer) / t**2) / np.sum(x * x / t**2))
    return max(gamma, 0.0)


def ring_allreduce_s(n, nbytes, alpha, beta, gamma, bucket_bytes):
    """Ring all-reduce of nbytes in buckets of bucket_bytes over n nodes."""
    if n == 1:
        return 0.0
    buckets = max(1, math.ceil(nbytes / bucket_bytes))
    return buckets * 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / beta + (n - 1) / n * nbytes * gamma


def measured_step_times(results):
    """Median step seconds at 2 threads of the char GPT (vs_pytorch.json) and
    GPT-2 124M (gpt2_vs_torch.json), with where each came from."""
    out = {}
    vs = json.load(open(os.path.join(results, "vs_pytorch.json")))
    cell = next(c for c in vs["cells"] if c["workload"] == "gpt" and c["variant"] == "lldl-lm"
                and c["threads"] == 2)
    out["gpt"] = {"step_s": 16 * 128 / cell["median"], "source": "vs_pytorch.json gpt lldl-lm 2 threads "
                  f"({cell['median']:.0f} tokens/s at 16 x 128)"}
    g2 = json.load(open(os.path.join(results, "gpt2_vs_torch.json")))
    out["gpt2_124m"] = {"step_s": g2["train_step_s"]["lldl_train"]["median"],
                        "source": "gpt2_vs_torch.json lldl_train (4 x 256 tokens, 2 threads)"}
    return out


def predict(models, links, bucket_bytes, bwd_fraction):
    rows = []
    for name, mdl in models.items():
        for link, (alpha, beta) in links.items():
            for n in NODES:
                t = ring_allreduce_s(n, mdl["grad_bytes"], alpha, beta, mdl["gamma_s_per_B"], bucket_bytes)
                step = mdl["step_s"]
                hidden = min(t, bwd_fraction * step)
                rows.append({"model": name, "link": link, "nodes": n, "allreduce_s": t, "step_s": step,
                             "eff_no_overlap": step / (step + t),
                             "eff_overlap": step / (step + t - hidden)})
    return rows


def measured_points(ar, models, alpha, beta, bucket_bytes):
    """This machine's own 2-rank efficiency per model: the measured all-reduce
    time interpolated (log-log) at the model's bucket sizes, no overlap."""
    m = np.log([r["bytes"] for r in ar])
    t = np.log([r["median_s"] for r in ar])
    pts = []
    for name, mdl in models.items():
        full, rest = divmod(mdl["grad_bytes"], bucket_bytes)
        sizes = [bucket_bytes] * int(full) + ([rest] if rest else [])
        tm = sum(float(np.exp(np.interp(np.log(s), m, t))) for s in sizes)
        pts.append({"model": name, "nodes": ar[0]["ranks"], "allreduce_s": tm,
                    "model_s": ring_allreduce_s(ar[0]["ranks"], mdl["grad_bytes"], alpha, beta, mdl["gamma_s_per_B"],
                                                bucket_bytes),
                    "eff_no_overlap": mdl["step_s"] / (mdl["step_s"] + tm)})
    return pts


def plot(path, pp, ar, fit, rows, points):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    alpha, beta, gamma = fit["alpha_s"], fit["beta_Bps"], fit["plot_gamma"]
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(13, 5))
    ms = np.logspace(np.log10(4), np.log10(max(r["bytes"] for r in ar + pp)), 100)
    for rs, label, mk in ((pp, "ping-pong, measured (one way)", "o"), (ar, f"all-reduce, {ar[0]['ranks']} ranks, measured", "s")):
        x = [r["bytes"] for r in rs]
        y = np.array([r["median_s"] for r in rs])
        err = [y - [r["min_s"] for r in rs], [r["max_s"] for r in rs] - y]
        a0.errorbar(x, y, yerr=err, fmt=mk, label=label, ms=4)
    a0.plot(ms, alpha + ms / beta, "-", label="alpha + m/beta (fit)")
    n = ar[0]["ranks"]
    a0.plot(ms, 2 * (n - 1) * (alpha + ms / (n * beta)), "--", label=f"ring model, {n} ranks, no reduction cost")
    a0.plot(ms, 2 * (n - 1) * (alpha + ms / (n * beta)) + (n - 1) / n * ms * gamma, "-.",
            label=f"ring model, {n} ranks, with gamma at the bucket size (fit)")
    a0.set(xscale="log", yscale="log", xlabel="message bytes", ylabel="seconds",
           title="this machine: MPI over shared memory")
    a0.legend(fontsize=8)
    for (model, link), style in zip(sorted({(r["model"], r["link"]) for r in rows}), ["-", "--", "-", "--"]):
        rs = [r for r in rows if r["model"] == model and r["link"] == link]
        line, = a1.plot([r["nodes"] for r in rs], [r["eff_no_overlap"] for r in rs], style, marker=".",
                        label=f"{model}, {link}, no overlap")
        a1.plot([r["nodes"] for r in rs], [r["eff_overlap"] for r in rs], style, color=line.get_color(),
                alpha=0.4, label=f"{model}, {link}, overlap with backward")
    for p in points:
        a1.plot([p["nodes"]], [p["eff_no_overlap"]], "k*", ms=10)
        a1.annotate(f"{p['model']} measured here", (p["nodes"], p["eff_no_overlap"]), fontsize=7,
                    xytext=(5, -10), textcoords="offset points")
    a1.set(xscale="log", xlabel="nodes", ylabel="weak-scaling efficiency", ylim=(0, 1.05),
           title="predicted data-parallel efficiency (ring all-reduce)")
    a1.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    a1.set_xticks(NODES, [str(n) for n in NODES])
    a1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(rows, links):
    out = ["| model | link | " + " | ".join(f"{n} nodes" for n in NODES) + " |",
           "|---|---|" + "---|" * len(NODES)]
    for model in sorted({r["model"] for r in rows}):
        for link in links:
            rs = sorted((r for r in rows if r["model"] == model and r["link"] == link), key=lambda r: r["nodes"])
            cells = [f"{r['allreduce_s'] * 1e3:.3g} ms, {r['eff_no_overlap']:.2f} / {r['eff_overlap']:.2f}" for r in rs]
            out.append(f"| {model} | {link} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", default=os.path.join(RESULTS, "mpi_comm_np2.csv"))
    ap.add_argument("--results", default=RESULTS, help="folder of vs_pytorch.json and gpt2_vs_torch.json")
    ap.add_argument("--out", default=None, help="output folder (default: the CSV's)")
    ap.add_argument("--alpha-10g-us", type=float, default=30.0, help="assumed latency of a 10 Gbit/s link (TCP)")
    ap.add_argument("--alpha-100g-us", type=float, default=3.0, help="assumed latency of a 100 Gbit/s link (RDMA)")
    ap.add_argument("--bucket-mb", type=float, default=4.0,
                    help="gradient bucket size in MiB (GradSync's default, dist/grad_sync.h)")
    ap.add_argument("--bwd-fraction", type=float, default=2 / 3,
                    help="backward's share of the step (what overlap can hide behind)")
    a = ap.parse_args()
    rows_in = read_csv(a.csv)
    pp = [r for r in rows_in if r["kind"] == "pingpong"]
    ar = [r for r in rows_in if r["kind"] == "allreduce"]
    if not pp or not ar:
        sys.exit(f"dist_scaling: {a.csv} needs both pingpong and allreduce rows (run with >= 2 ranks)")
    alpha, beta = fit_alpha_beta(pp)
    fit = {"alpha_s": alpha, "beta_Bps": beta, "csv": os.path.relpath(a.csv, HERE)}
    steps = measured_step_times(a.results)
    models = {
        "gpt": {"params": gpt_params(96, 128, 4, 128), "config": "4 layers, 4 heads, 128 wide, block 128, vocab 96, batch 16"},
        "gpt2_124m": {"params": gpt_params(50257, 1024, 12, 768), "config": "12 layers, 12 heads, 768 wide, 1024 positions, vocab 50257, batch 4 x 256"},
    }
    bucket = int(a.bucket_mb * (1 << 20))
    for k, mdl in models.items():
        mdl["grad_bytes"] = 4 * mdl["params"]
        mdl["gamma_s_per_B"] = fit_gamma(ar, alpha, beta, min(bucket, mdl["grad_bytes"]))
        mdl.update(steps[k])
    links = {"10 Gbit/s": (a.alpha_10g_us * 1e-6, 10e9 / 8), "100 Gbit/s": (a.alpha_100g_us * 1e-6, 100e9 / 8)}
    rows = predict(models, links, bucket, a.bwd_fraction)
    points = measured_points(ar, models, alpha, beta, bucket)
    out = a.out or os.path.dirname(os.path.abspath(a.csv))
    os.makedirs(out, exist_ok=True)
    fit["plot_gamma"] = fit_gamma(ar, alpha, beta, bucket)
    plot(os.path.join(out, "dist_scaling.png"), pp, ar, fit, rows, points)
    md = [f"alpha-beta fit on this machine ({fit['csv']}): alpha {alpha * 1e6:.3g} us, "
          f"beta {beta / 1e9:.3g} GB/s; the reduction's gamma fitted per model on the 2-rank all-reduce "
          f"at its bucket size.",
          "", "| model | parameters | gradient MB | gamma ns/B | step on this machine (2 threads) |",
          "|---|---|---|---|---|"]
    for k, mdl in models.items():
        md.append(f"| {k} ({mdl['config']}) | {mdl['params']:,} | {mdl['grad_bytes'] / 1e6:.1f} | "
                  f"{mdl['gamma_s_per_B'] * 1e9:.3g} | "
                  f"{mdl['step_s'] * 1e3:.1f} ms ({mdl['source']}) |")
    md += ["", f"Predicted ring all-reduce per step and efficiency (no overlap / overlap with backward = "
           f"{a.bwd_fraction:.2f} of the step), buckets of {a.bucket_mb:g} MiB, links at their nominal rate, "
           f"latency {a.alpha_10g_us:g} us (10 Gbit/s) and {a.alpha_100g_us:g} us (100 Gbit/s), "
           f"the reduction at this machine's gamma; nodes as fast as this one. Cells: all-reduce per step, "
           f"efficiency no overlap / with overlap:", "", table(rows, links), "",
           "Measured on this machine (shared memory, no overlap):", ""]
    for p in points:
        md.append(f"- {p['model']}: {p['nodes']} ranks, all-reduce of the gradient {p['allreduce_s'] * 1e3:.3g} ms "
                  f"measured (model {p['model_s'] * 1e3:.3g} ms), efficiency {p['eff_no_overlap']:.2f}")
    text = "\n".join(md) + "\n"
    open(os.path.join(out, "dist_scaling.md"), "w").write(text)
    json.dump({"fit": fit, "models": models, "links": {k: {"alpha_s": v[0], "beta_Bps": v[1]} for k, v in links.items()},
               "bucket_bytes": bucket, "bwd_fraction": a.bwd_fraction, "predictions": rows, "measured": points},
              open(os.path.join(out, "dist_scaling.json"), "w"), indent=1)
    print(text)


if __name__ == "__main__":
    main()
