"""The process-per-measurement harness shared by vs_pytorch.py, cnn_vs_torch.py
and lm_vs_torch.py. Imports neither lldl nor torch.

Every measurement (one variant, one thread count, one repeat) runs in a fresh
Python process whose OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS
are set in its environment before the interpreter starts, so before `import
torch` or `import cppapi`. Repeats alternate the order of the variants (forward
on even repeats, backward on odd ones), so neither framework always runs first
after the other's process has warmed or heated the machine. A cell is reported
as the median of its repeats with their range (min-max).

The child prints one JSON line last: {"rate": ..., "rss_mib": ..., ...} or
{"error": "..."} when the measurement itself failed (e.g. torch.compile raised);
such a failure is recorded with its text, not dropped.
"""
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

SCHEMA = "lldl-bench/2"


def thread_env(threads):
    return dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")


def peak_rss_mib():
    """This process's peak resident set (interpreter, libraries, data, model)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_main(fn):
    """Runs fn() in a child and prints its result (or its failure) as the last line."""
    try:
        out = fn()
        out["rss_mib"] = peak_rss_mib()
    except Exception as e:  # noqa: BLE001 - the failure text is the result
        out = {"error": f"{type(e).__name__}: {e}"[:2000]}
    print(json.dumps(out), flush=True)


def run_child(argv, threads, timeout=900):
    """One measurement process; returns its JSON result, or {"error": ...}."""
    t0, load = time.perf_counter(), os.getloadavg()[0]
    try:
        p = subprocess.run([sys.executable] + argv, env=thread_env(threads), capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s", "wall_s": timeout}
    lines = p.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        out = {"error": f"exit {p.returncode}: {p.stderr[-2000:]}"}
    out["wall_s"], out["load1"] = time.perf_counter() - t0, load
    return out


def run_matrix(variants, threads, repeats, argv_of, log=print, on_progress=None):
    """Runs every (variant, thread count) `repeats` times, alternating the order.
    variants: list of names; argv_of(name, threads) -> child argv; on_progress(runs,
    repeat_s) after each measurement (to save what is measured so far: a run
    stopped midway keeps it; repeat_s lists the repeats completed).
    Returns {(name, threads): [result, ...]} and the wall time of each repeat."""
    runs = {(v, t): [] for v in variants for t in threads}
    repeat_s = []
    for r in range(repeats):
        t_rep = time.perf_counter()
        order = variants if r % 2 == 0 else variants[::-1]
        for t in threads:
            for v in order:
                res = run_child(argv_of(v, t), t)
                runs[(v, t)].append(res)
                msg = res["error"].splitlines()[0][:100] if "error" in res else \
                    f"{res['rate']:12.1f}  RSS {res.get('rss_mib', 0):6.0f} MiB"
                log(f"  repeat {r + 1}/{repeats} {t} thr {v:22} {msg}")
                if on_progress:
                    on_progress(runs, repeat_s)
        repeat_s.append(time.perf_counter() - t_rep)
        if on_progress:
            on_progress(runs, repeat_s)
        if r == 0 and repeats > 1:
            log(f"  (first repeat took {repeat_s[0]:.0f} s: about {repeat_s[0] * repeats / 60:.1f} "
                f"min for all {repeats})")
    return runs, repeat_s


def summarise(results, key="rate"):
    """Median, min and max of the successful rates, and what else the runs report."""
    rates = [r[key] for r in results if key in r]
    errors = [r["error"] for r in results if "error" in r]
    cell = {"repeats": len(results), "rates": rates, "errors": errors,
            "median": statistics.median(rates) if rates else None,
            "min": min(rates) if rates else None, "max": max(rates) if rates else None,
            "rss_mib": max((r["rss_mib"] for r in results if "rss_mib" in r), default=None),
            # The 1-minute load average as each repeat started: on a shared
            # machine, the figure to read the spread against.
            "load1": [round(r["load1"], 2) for r in results if "load1" in r]}
    compile_s = [r["compile_s"] for r in results if r.get("compile_s") is not None]
    if compile_s:
        cell["compile_s"] = compile_s
    return cell


def fmt_cell(c, width=22):
    if c is None:
        return f"{'-':>{width}}"
    if c["median"] is None:
        return f"{'FAILED':>{width}}"
    return f"{c['median']:.0f} [{c['min']:.0f}-{c['max']:.0f}]".rjust(width)


def ratio(a, b):
    return None if a is None or b is None or not b else a / b


def ratios(cells, lldl_variant, torch_variant, threads):
    """lldl / torch medians at each thread count, and each at its own best."""
    def med(v, t):
        c = cells.get((v, t))
        return None if c is None else c["median"]
    by_t = {str(t): ratio(med(lldl_variant, t), med(torch_variant, t)) for t in threads}
    lbest = max(threads, key=lambda t: med(lldl_variant, t) or 0)
    tbest = max(threads, key=lambda t: med(torch_variant, t) or 0)
    return {"lldl": lldl_variant, "torch": torch_variant, "by_threads": by_t,
            "best_vs_best": ratio(med(lldl_variant, lbest), med(torch_variant, tbest)),
            "lldl_best_threads": lbest, "torch_best_threads": tbest}


def fmt_ratio(x):
    return f"{x:6.2f}" if x is not None else "     -"


def machine():
    load = os.getloadavg()
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in load]}


def git_commit():
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                              text=True).stdout.strip() or None
    except OSError:
        return None


def torch_version():
    import importlib.metadata as md  # the version without importing torch
    try:
        return md.version("torch")
    except md.PackageNotFoundError:
        return None
