"""Does the fused lstm kind pay for itself? lstm(x, w_ih, w_hh, b) against the
composite lstm_gates(linear(x over B*T rows, w_ih, b, trans_b), w_hh).

    .venv/bin/python bench/lstm_fused_vs_composite.py --threads 1 --repeats 40 --steps 3

The composite is the same function (the script checks h and every gradient
agree) with one difference in memory: linear writes gx (B, T, 4H) as its own
tensor, which lstm_gates then reads into its gate workspace, where the fused
kind projects straight into that workspace and runs the time loop in place.

Shapes: the char-LSTM's (B 32, T 64, I 64, H 256), with x a plain input
("x") and x = embedding(ids, table) over a vocabulary of 80 ("emb"). Each
repeat times both variants back to back, alternating which goes first, so a
pair sees the same load on a shared machine; reported are the medians with
their range and the median of the paired ratios composite / fused.
"""
import argparse
import os
import statistics
import sys
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--repeats", type=int, default=25)
ap.add_argument("--steps", type=int, default=3, help="steps per timing")
ap.add_argument("--cases", default="x:fwd,x:fwd+bwd,emb:fwd,emb:fwd+bwd")
a = ap.parse_args()
# Thread variables before the engine is loaded.
os.environ["OMP_NUM_THREADS"] = os.environ["LLDL_NUM_THREADS"] = str(a.threads)

import numpy as np  # noqa: E402

import cppapi  # noqa: E402

B, T, I, H, V = 32, 64, 64, 256, 80
rng = np.random.default_rng(0)
X = (rng.standard_normal((B, T, I)) * 0.5).astype(np.float32)
IDS = rng.integers(0, V, (B, T)).astype(np.int32)


def make_graph():
    g = cppapi.Graph()
    p = dict(emb=g.param((V, I), seed=1), w_ih=g.param((4 * H, I), seed=2),
             w_hh=g.param((4 * H, H), seed=3), b=g.param((4 * H,), init="zeros"))
    return g, p


def fused(x, p):
    return cppapi.lstm(x, p["w_ih"], p["w_hh"], p["b"])


def composite(x, p):
    gx = cppapi.linear(cppapi.reshape(x, [B * T, I]), p["w_ih"], p["b"], trans_b=True)
    return cppapi.lstm_gates(cppapi.reshape(gx, [B, T, 4 * H]), p["w_hh"])


VARIANTS = {"fused": fused, "composite": composite}


def loss_of(g, p, f, case):
    x = g.input(X, requires_grad=True) if case == "x" else cppapi.embedding(g.input(IDS), p["emb"])
    h = f(x, p)
    return h, cppapi.mean(cppapi.mean(cppapi.mean(h)))


def check_same_function():
    for case in ("x", "emb"):
        outs = []
        for f in VARIANTS.values():
            g, p = make_graph()
            h, loss = loss_of(g, p, f, case)
            g.backward(loss)
            outs.append([h.numpy()] + [t.grad for t in p.values() if t.grad is not None])
        err = max(float(np.max(np.abs(u - v))) for u, v in zip(*outs))
        if err > 1e-6:
            sys.exit(f"{case}: fused and composite differ by {err:.3g}")


def seconds_per_step(g, p, f, case, backward):
    t0 = time.perf_counter()
    for _ in range(a.steps):
        _, loss = loss_of(g, p, f, case)
        if backward:
            g.backward(loss)
        else:
            loss.item()
        g.reset()
    return (time.perf_counter() - t0) / a.steps


def main():
    check_same_function()
    graphs = {k: make_graph() for k in VARIANTS}
    print(f"threads {a.threads}; B {B}, T {T}, I {I}, H {H}, vocab {V}; {a.repeats} paired "
          f"repeats of {a.steps} steps; ms per step, median [min-max]")
    for c in a.cases.split(","):
        case, phase = c.split(":")
        backward = phase == "fwd+bwd"
        for k, f in VARIANTS.items():  # warm-up: arena blocks, threads
            seconds_per_step(*graphs[k], f, case, backward)
        t = {k: [] for k in VARIANTS}
        for r in range(a.repeats):
            order = list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]
            for k in order:
                t[k].append(seconds_per_step(*graphs[k], VARIANTS[k], case, backward))
        ratio = sorted(c_ / f_ for c_, f_ in zip(t["composite"], t["fused"]))
        cell = lambda v: f"{statistics.median(v) * 1e3:7.2f} [{min(v) * 1e3:.2f}-{max(v) * 1e3:.2f}]"
        n = len(ratio)
        print(f"{case:4s} {phase:8s} fused {cell(t['fused'])}  composite {cell(t['composite'])}  "
              f"composite/fused median {statistics.median(ratio):.3f} "
              f"[q25 {ratio[n // 4]:.3f}, q75 {ratio[3 * n // 4]:.3f}], slower in "
              f"{sum(x > 1 for x in ratio)}/{n} pairs", flush=True)


if __name__ == "__main__":
    main()
