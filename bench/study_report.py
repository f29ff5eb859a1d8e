"""Plots and a markdown report from the study's CSV (bench/study).

    python bench/study_report.py [--csv bench/out/study.csv] [--peak bench/out/peak.csv]
                                 [--out bench/out]

Writes PNGs (runtime vs threads per op, speed-up vs size, GFLOP/s vs
arithmetic intensity under the measured roofline, CPU-vs-GPU crossover when
CUDA rows exist) and report.md. Every statement in the report is computed
from the rows; thresholds are named constants below.
"""
import argparse
import csv
import math
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PAYS_OFF = 1.10        # speed-up that counts as "multi-threading pays off"
OVERHEAD_FACTOR = 2.0  # within this factor of the fastest call: overhead-bound
LOW_ROOF = 0.10        # below this fraction of the attainable rate: far from the roofline
BWD_RATIO = 6.0        # backward slower than this x forward: flagged (the rule expects ~2x)
NEEDED = ["op", "size", "flops", "bytes", "threads", "backend", "tier", "phase", "median_s"]


def read_rows(path):
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        missing = [c for c in NEEDED if c not in (r.fieldnames or [])]
        if missing:
            sys.exit(f"study_report: {path} lacks column(s) {', '.join(missing)}")
        rows = []
        for i, d in enumerate(r, start=2):
            try:
                rows.append({"op": d["op"], "size": d["size"], "flops": float(d["flops"]),
                             "bytes": float(d["bytes"]), "threads": int(d["threads"]),
                             "backend": d["backend"], "tier": d["tier"], "phase": d["phase"],
                             "s": float(d["median_s"])})
            except ValueError as e:
                sys.exit(f"study_report: {path}:{i}: {e}")
    if not rows:
        sys.exit(f"study_report: {path} has no rows")
    return rows


def read_peaks(path):
    peaks = {}
    if path and os.path.exists(path):
        with open(path, newline="") as f:
            for d in csv.DictReader(f):
                peaks[int(d["threads"])] = {"gflops": float(d["gflops"]), "gbs": float(d["gbs"]),
                                            "load": float(d.get("load1") or -1)}
    return peaks


def fmt_s(s):
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_n(x):
    for unit, k in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= k:
            return f"{x / k:.3g}{unit}"
    return f"{x:.3g}"


class Data:
    """Rows indexed as [backend/tier][phase][op][size][threads] -> row (last one wins)."""

    def __init__(self, rows):
        self.rows = rows
        self.ix = defaultdict(dict)
        self.order = defaultdict(list)  # op -> sizes by flops
        for r in rows:
            key = (r["backend"], r["tier"], r["phase"], r["op"], r["size"])
            self.ix[key][r["threads"]] = r
        cpu_fwd = [r for r in rows if r["backend"] == "cpu" and r["phase"] == "forward"]
        for op in sorted({r["op"] for r in rows}):
            sizes = {r["size"]: r["flops"] for r in cpu_fwd if r["op"] == op}
            if not sizes:
                sizes = {r["size"]: r["flops"] for r in rows if r["op"] == op}
            self.order[op] = sorted(sizes, key=lambda s: (sizes[s], s))
        self.ops = list(self.order)
        self.threads = sorted({r["threads"] for r in rows if r["backend"] == "cpu"})

    def cpu(self, phase, op, size):
        return self.ix.get(("cpu", "cpu", phase, op, size), {})

    def gpu_tiers(self):
        return sorted({(r["backend"], r["tier"]) for r in self.rows if r["backend"] != "cpu"})


def speedup(d, phase, op, size):
    """(threads, T1 / T_threads) at the largest thread count, or None."""
    by = d.cpu(phase, op, size)
    if 1 not in by or len(by) < 2:
        return None
    t = max(by)
    return t, by[1]["s"] / by[t]["s"]


# ---- plots --------------------------------------------------------------------

def plot_threads(d, out):
    files = []
    for op in d.ops:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        drawn = False
        for ax, phase in zip(axes, ("forward", "forward_backward")):
            for size in d.order[op]:
                by = d.cpu(phase, op, size)
                if len(by) < 1:
                    continue
                th = sorted(by)
                ax.plot(th, [by[t]["s"] for t in th], marker="o", label=size)
                drawn = True
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("threads")
            ax.set_ylabel("median time per call (s)")
            ax.set_title(f"{op}: {phase}")
            ax.set_xticks(d.threads, [str(t) for t in d.threads])
        if drawn:
            axes[0].legend(fontsize=7, title="size")
            fig.tight_layout()
            name = f"threads_{op}.png"
            fig.savefig(os.path.join(out, name), dpi=100)
            files.append(name)
        plt.close(fig)
    return files


def plot_speedup(d, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    tmax = max(d.threads)
    for op in d.ops:
        pts = [(d.cpu("forward_backward", op, s)[1]["flops"], sp[1]) for s in d.order[op]
               if (sp := speedup(d, "forward_backward", op, s))]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=op)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.axhline(tmax, color="grey", lw=0.8, ls="--", label=f"ideal ({tmax} threads)")
    ax.set_xscale("log")
    ax.set_xlabel("FLOPs per forward+backward call")
    ax.set_ylabel(f"speed-up, {tmax} threads over 1")
    ax.set_title("multi-threading speed-up vs problem size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "speedup_vs_size.png"), dpi=100)
    plt.close(fig)
    return ["speedup_vs_size.png"]


def plot_roofline(d, peaks, out):
    fig, ax = plt.subplots(figsize=(7, 5))
    ais = []
    for op in d.ops:
        pts = []
        for s in d.order[op]:
            r = best_cpu(d, "forward", op, s)
            if r and r["flops"] > 0 and r["bytes"] > 0:
                pts.append((r["flops"] / r["bytes"], r["flops"] / r["s"] * 1e-9))
        if pts:
            ais += [p[0] for p in pts]
            ax.plot(*zip(*pts), marker="o", ls=":", label=op)
    if peaks and ais:
        xs = [min(ais) / 2 * 1.5 ** i for i in range(60) if min(ais) / 2 * 1.5 ** i < max(ais) * 4]
        for t, p in sorted(peaks.items()):
            ax.plot(xs, [min(p["gflops"], x * p["gbs"]) for x in xs], lw=1.5,
                    label=f"roofline, {t} thread(s)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("achieved GFLOP/s")
    ax.set_title("forward calls (fastest thread count) under the measured roofline")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "roofline.png"), dpi=100)
    plt.close(fig)
    return ["roofline.png"]


def best_cpu(d, phase, op, size):
    by = d.cpu(phase, op, size)
    return min(by.values(), key=lambda r: r["s"]) if by else None


def plot_crossover(d, out):
    tiers = d.gpu_tiers()
    if not tiers:
        return []
    ops = [op for op in d.ops if any(d.ix.get((b, t, "forward", op, s)) for b, t in tiers
                                     for s in d.order[op])]
    fig, axes = plt.subplots(1, len(ops), figsize=(5 * len(ops), 4), squeeze=False)
    for ax, op in zip(axes[0], ops):
        cpu = [(r["flops"], r["s"]) for s in d.order[op] if (r := best_cpu(d, "forward", op, s))]
        if cpu:
            ax.plot(*zip(*cpu), marker="o", label="cpu (best threads)")
        for b, t in tiers:
            pts = [(min(by.values(), key=lambda r: r["s"])["flops"],
                    min(r["s"] for r in by.values()))
                   for s in d.order[op] if (by := d.ix.get((b, t, "forward", op, s)))]
            if pts:
                ax.plot(*zip(*pts), marker="s", label=f"{b}/{t}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("FLOPs per call")
        ax.set_ylabel("time (s)")
        ax.set_title(op)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "crossover.png"), dpi=100)
    plt.close(fig)
    return ["crossover.png"]


# ---- the report ----------------------------------------------------------------

def pays_off(d, op):
    """Sentence on where multi-threading pays off for one op (forward+backward)."""
    sps = [(s, sp) for s in d.order[op] if (sp := speedup(d, "forward_backward", op, s))]
    if not sps:
        return None, f"**{op}**: no 1-thread and multi-thread pair measured."
    t = sps[0][1][0]
    start = None
    for i in range(len(sps)):
        if all(sp[1] >= PAYS_OFF for _, sp in sps[i:]):
            start = i
            break
    best = max(sps, key=lambda x: x[1][1])
    last = sps[-1]
    flops = lambda s: d.cpu("forward_backward", op, s)[1]["flops"]  # noqa: E731
    if start is not None:
        s0, sp0 = sps[start]
        smaller = f" (below it: {sps[start - 1][1][1]:.2f}x at {sps[start - 1][0]})" if start else ""
        return flops(s0), (f"**{op}**: {t} threads pay off from size {s0} ({fmt_n(flops(s0))} FLOPs "
                           f"per forward+backward call): {sp0[1]:.2f}x there{smaller}, "
                           f"{last[1][1]:.2f}x at the largest size {last[0]} "
                           f"(parallel efficiency {last[1][1] / t:.0%}).")
    return None, (f"**{op}**: {t} threads do not pay off in the measured range (no size from "
                  f"which every larger one reaches {PAYS_OFF:.2f}x); best {best[1][1]:.2f}x at {best[0]}, "
                  f"{last[1][1]:.2f}x at the largest size {last[0]}.")


def roof(r, peak):
    ai = r["flops"] / r["bytes"] if r["bytes"] else 0.0
    att = min(peak["gflops"], ai * peak["gbs"])
    got = r["flops"] / r["s"] * 1e-9
    return ai, att, (got / att if att else 0.0), ai < peak["gflops"] / peak["gbs"]


def report(d, peaks, plots, csv_path, machine=None):
    L = []
    tmax = max(d.threads)
    # The load-average caution compares with the measuring machine's CPUs: this
    # one's, or for a CSV from elsewhere (--machine) the largest thread count.
    cores = tmax if machine else (os.cpu_count() or 1)
    machine = machine or f"this machine, {cores} logical CPUs"
    L += ["# lldl study report", "",
          f"Generated by `bench/study_report.py` from `{csv_path}`: {len(d.rows)} rows, "
          f"ops {', '.join(d.ops)}; CPU thread counts {', '.join(map(str, d.threads))}; "
          f"measured on {machine}. Times are medians of repeated calls; "
          "FLOPs and bytes are the ops' metadata rows (backward counted as 2x forward).", ""]
    if peaks:
        L += ["Measured peak (Eigen float32 GEMM; parallel triad over 3 x 32 MB):", "",
              "| threads | GFLOP/s | GB/s | ridge FLOP/B | load avg at measurement |",
              "|---|---|---|---|---|"]
        for t, p in sorted(peaks.items()):
            L.append(f"| {t} | {p['gflops']:.1f} | {p['gbs']:.1f} | {p['gflops'] / p['gbs']:.1f} | "
                     f"{p['load']:.2f} |")
        loads = [p["load"] for p in peaks.values() if p["load"] >= 0]
        if loads and max(loads) > cores * 0.75:
            L += ["", f"**Caution:** the load average was {max(loads):.1f} on {cores} CPUs while the "
                  "study ran: other processes shared the cores, which stretches multi-thread "
                  "timings (a thread descheduled at an OpenMP barrier stalls the others). "
                  "Rerun on an idle machine before trusting the thread-scaling answers."]
        L.append("")
    peak = peaks.get(tmax) or (peaks[max(peaks)] if peaks else None)

    L += ["## Where does multi-threading pay off?", ""]
    thresholds = []
    for op in d.ops:
        f, text = pays_off(d, op)
        L.append("- " + text)
        if f:
            thresholds.append((f, op))
    if thresholds:
        f, op = min(thresholds)
        L += ["", f"Smallest problem for which {tmax} threads paid off at every larger measured "
              f"size: {fmt_n(f)} FLOPs per forward+backward call ({op}); below the threshold "
              "the cost of starting and joining threads exceeds the work saved."]
    L.append("")

    L += ["## Which ops are memory-bound, which compute-bound?", ""]
    if peak:
        ridge = peak["gflops"] / peak["gbs"]
        L += [f"Ridge point at {tmax} thread(s): {ridge:.1f} FLOP/byte. An op whose arithmetic "
              "intensity is below it cannot exceed intensity x bandwidth. Each op at its largest "
              "size, at its fastest thread count:", ""]
        mem, comp, cached = [], [], []
        for op in d.ops:
            r = best_cpu(d, "forward", op, d.order[op][-1])
            if not r or not r["bytes"]:
                continue
            ai, att, frac, mb = roof(r, peaks.get(r["threads"], peak))
            (mem if mb else comp).append(
                f"{op} ({ai:.2f} FLOP/B at {d.order[op][-1]}: {r['flops'] / r['s'] * 1e-9:.1f} "
                f"GFLOP/s, {frac:.0%} of the attainable {att:.1f})")
        L.append("- memory-bound (largest size): " + ("; ".join(mem) if mem else "none"))
        L.append("- compute-bound (largest size): " + ("; ".join(comp) if comp else "none"))
        over_gemm = []
        for r in d.rows:
            pk = peaks.get(r["threads"])
            if r["backend"] == "cpu" and r["phase"] == "forward" and pk and r["bytes"]:
                ai, att, frac, mb = roof(r, pk)
                if frac > 1.0:
                    (cached if mb else over_gemm).append(f"{r['op']} {r['size']} ({r['threads']} thr)")
        if cached:
            L.append("- Memory-bound calls above the roofline (their data stay in the caches, "
                     "which are faster than the triad's 96 MB stream): " + ", ".join(cached) + ".")
        if over_gemm:
            L.append("- Compute-bound calls above the measured GEMM peak (the peak was measured "
                     "low, e.g. while other processes used the cores): " + ", ".join(over_gemm) + ".")
    else:
        L.append("No peak file: run the study with --peak to place ops under the roofline.")
    L.append("")

    L += ["## Bottlenecks", ""]
    fwd = [r for r in d.rows if r["backend"] == "cpu" and r["phase"] == "forward"]
    fastest = min(fwd, key=lambda r: r["s"])
    floor = fastest["s"]
    over = sorted({(r["op"], r["size"]) for r in fwd if r["s"] <= OVERHEAD_FACTOR * floor},
                  key=lambda x: (d.ops.index(x[0]), d.order[x[0]].index(x[1])))
    L.append(f"- Fixed cost of a call: the fastest forward call took {fmt_s(floor)} "
             f"({fastest['op']} {fastest['size']}). Calls within {OVERHEAD_FACTOR:g}x of that are "
             "dominated by per-op overhead (shape rule, allocation, dispatch): "
             + (", ".join(f"{o} {s}" for o, s in over) or "none") + ".")
    if peak:
        far = []
        for op in d.ops:
            r = None
            for s in d.order[op]:
                r = best_cpu(d, "forward", op, s)
                if not r or r["s"] <= OVERHEAD_FACTOR * floor or not r["bytes"]:
                    continue
                ai, att, frac, mb = roof(r, peaks.get(r["threads"], peak))
                if frac < LOW_ROOF:
                    far.append((frac, r["op"], r["size"], "memory" if mb else "compute"))
        far.sort()
        L.append(f"- Far from the roofline (< {LOW_ROOF:.0%} of the attainable rate at the fastest "
                 "thread count, not "
                 "overhead-bound): " + (", ".join(f"{o} {s} ({f:.1%}, {b}-bound)"
                                                   for f, o, s, b in far[:12]) or "none") + ".")
    slow_bwd = []
    for op in d.ops:
        for s in d.order[op]:
            f, b = d.cpu("forward", op, s).get(1), d.cpu("backward", op, s).get(1)
            if f and b and b["s"] > BWD_RATIO * f["s"] and b["s"] > OVERHEAD_FACTOR * floor:
                slow_bwd.append(f"{op} {s} ({b['s'] / f['s']:.1f}x)")
    L.append(f"- Backward slower than {BWD_RATIO:g}x its forward at 1 thread (the FLOP count "
             "predicts about 2x): " + (", ".join(slow_bwd) or "none") + ".")
    hurt = []
    for op in d.ops:
        for s in d.order[op]:
            sp = speedup(d, "forward_backward", op, s)
            if sp and sp[1] < 1 / PAYS_OFF:
                hurt.append(f"{op} {s} ({sp[1]:.2f}x)")
    L.append(f"- More threads made it slower (speed-up below {1 / PAYS_OFF:.2f}x): "
             + (", ".join(hurt) or "none") + ".")
    L.append("")

    L += ["## CPU vs GPU", ""]
    tiers = d.gpu_tiers()
    if not tiers:
        L.append("No GPU rows in this data (no CUDA backend in the build or no GPU on the machine); "
                 "the crossover needs a run with `--backends cpu,cuda`.")
    for b, t in tiers:
        for op in d.ops:
            wins = []
            for s in d.order[op]:
                by, cb = d.ix.get((b, t, "forward", op, s)), best_cpu(d, "forward", op, s)
                if by and cb:
                    wins.append((s, min(r["s"] for r in by.values()) < cb["s"]))
            if not wins:
                continue
            start = next((i for i in range(len(wins)) if all(w for _, w in wins[i:])), None)
            L.append(f"- {op}, {b}/{t}: " + (f"faster than the best CPU setting from size "
                                             f"{wins[start][0]}" if start is not None else
                                             "never faster than the best CPU setting at the "
                                             "largest sizes measured") + ".")
    L.append("")

    L += ["## Fastest measured thread count (what automatic placement learns)", ""]
    for op in d.ops:
        best = []
        for s in d.order[op]:
            by = d.cpu("forward_backward", op, s)
            if by:
                best.append(f"{s}: {min(by, key=lambda t: by[t]['s'])}")
        L.append(f"- {op}: " + ", ".join(best))
    L += ["", "`CostModel::from_csv` (autograd/placement.h) fits time = a + b FLOPs + c bytes per op, "
          "backend and thread count on these rows; `Graph::set_auto_placement` then runs every "
          "kernel at the count it predicts fastest.", ""]

    L += ["## Measurements (CPU)", "",
          "| op | size | FLOPs | FLOP/B | fwd, 1 thr | fwd, best | fwd+bwd speed-up | GFLOP/s (best) "
          "| % of roof |", "|---|---|---|---|---|---|---|---|---|"]
    for op in d.ops:
        for s in d.order[op]:
            by = d.cpu("forward", op, s)
            if not by:
                continue
            b = min(by.values(), key=lambda r: r["s"])
            one = by.get(1)
            sp = speedup(d, "forward_backward", op, s)
            ai = b["flops"] / b["bytes"] if b["bytes"] else 0
            pk = peaks.get(b["threads"]) if peaks else None
            fr = f"{roof(b, pk)[2]:.0%}" if pk and b["bytes"] else "-"
            L.append(f"| {op} | {s} | {fmt_n(b['flops'])} | {ai:.2f} | "
                     f"{fmt_s(one['s']) if one else '-'} | {fmt_s(b['s'])} ({b['threads']} thr) | "
                     f"{f'{sp[1]:.2f}x' if sp else '-'} | {b['flops'] / b['s'] * 1e-9:.2f} | {fr} |")
    L += ["", "## Plots", ""]
    L += [f"![{p}]({p})" for p in plots]
    L.append("")
    return "\n".join(L)


def dist_section(path):
    """The data-parallel scaling model's table and plot (bench/dist_scaling.py,
    issue 15), when its dist_scaling.md exists beside the report."""
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        body = f.read()
    png = os.path.splitext(os.path.basename(path))[0] + ".png"
    return ("\n## Data-parallel scaling: ring all-reduce, alpha-beta model\n\n"
            "From `bench/dist_scaling.py` over `bench_mpi_comm`'s measurements (MPI ping-pong and "
            "all-reduce at 4 B..64 MB on this machine).\n\n" + body + f"\n![{png}]({png})\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default="bench/out/study.csv")
    ap.add_argument("--peak", default="bench/out/peak.csv")
    ap.add_argument("--out", default="bench/out")
    ap.add_argument("--dist", default=None,
                    help="dist_scaling.md to append (default: the one in --out, when present)")
    ap.add_argument("--machine", default=None,
                    help="where the CSV was measured (default: this machine and its CPU count)")
    a = ap.parse_args(argv)
    if not os.path.exists(a.csv):
        sys.exit(f"study_report: {a.csv} does not exist (run bench/study first)")
    d = Data(read_rows(a.csv))
    if not d.threads:
        sys.exit(f"study_report: {a.csv} has no CPU rows")
    peaks = read_peaks(a.peak)
    os.makedirs(a.out, exist_ok=True)
    plots = plot_threads(d, a.out) + plot_speedup(d, a.out) + plot_roofline(d, peaks, a.out)
    plots += plot_crossover(d, a.out)
    path = os.path.join(a.out, "report.md")
    with open(path, "w") as f:
        f.write(report(d, peaks, plots, a.csv, a.machine) + dist_section(a.dist or os.path.join(a.out, "dist_scaling.md")))
    print(f"study_report: wrote {path} and {len(plots)} plot(s)")


if __name__ == "__main__":
    main()
