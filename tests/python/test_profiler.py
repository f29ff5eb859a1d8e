"""The profiler, the measured peak, the placement cost model and the study
report from Python."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cppapi

from conftest import ROOT, seed_network

STEPS = 3


def run_steps(g, W, steps=STEPS):
    x_np = (np.arange(8 * 16, dtype=np.float32).reshape(8, 16) % 7 - 3) * 0.1
    for _ in range(steps):
        x = g.input(x_np)
        loss = cppapi.sum(cppapi.relu(x @ W))
        cppapi.tanh(x)  # forward only: no gradient path
        g.backward(loss)
        g.reset()


def test_profile_counts_calls_flops_and_time():
    g = cppapi.Graph()
    W = g.param((16, 4), name="W", seed=1)
    run_steps(g, W)
    assert g.profile() == {}, "profiling is off by default"
    g.set_profiling(True)
    assert g.profiling
    run_steps(g, W)
    p = g.profile()
    assert set(p) == {"matmul", "relu", "sum", "tanh"}
    for op in ("matmul", "relu", "sum"):
        assert p[op]["forward"]["calls"] == STEPS
        assert p[op]["backward"]["calls"] == STEPS
    assert p["tanh"]["forward"]["calls"] == STEPS
    assert p["tanh"]["backward"]["calls"] == 0
    mm = p["matmul"]
    assert mm["forward"]["flops"] == pytest.approx(STEPS * 2 * 8 * 16 * 4)
    assert mm["backward"]["flops"] == pytest.approx(2 * mm["forward"]["flops"])
    assert mm["forward"]["bytes"] == pytest.approx(STEPS * 4 * (8 * 16 + 16 * 4 + 8 * 4))
    assert mm["forward"]["seconds"] > 0
    assert mm["forward"]["gflops"] > 0
    assert mm["forward"]["backend"] == "cpu"

    table = g.profile_table()
    assert "matmul" in table and "tanh" in table
    assert f"total: {7 * STEPS} kernel calls" in table
    assert "ridge" in g.profile_table(roofline=True)

    g.set_profiling(False)
    run_steps(g, W)
    assert g.profile()["matmul"]["forward"]["calls"] == STEPS
    g.reset_profile()
    assert g.profile() == {}


def test_measure_peak_is_positive_and_cached():
    a = cppapi.measure_peak()
    assert set(a) == {"threads", "gflops", "gbs", "ridge"}
    assert a["gflops"] > 0.1 and a["gbs"] > 0.1
    assert a["ridge"] == pytest.approx(a["gflops"] / a["gbs"])
    assert cppapi.measure_peak() == a
    assert a["threads"] == cppapi.get_num_threads()


def test_seed_network_exposes_its_profile():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 10)).astype(np.float32)
    Y = rng.standard_normal((64, 1)).astype(np.float32)
    nn = seed_network()
    assert nn.profile() == {}
    nn.set_profiling(True)  # before the first fit builds the graph: carried over
    trainer = cppapi.Trainer(nn, cppapi.OptimiserType.SGD, 0.01)
    trainer.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    p = nn.profile()
    # Dense layers are one fused linear op each (matmul and bias together).
    assert p["linear"]["forward"]["calls"] >= 3 * 4  # three dense layers, four batches
    assert 0 < p["linear"]["backward"]["calls"] <= p["linear"]["forward"]["calls"]
    assert "linear" in nn.profile_table() and "bias_add" not in p


def synthetic_csv(path, gpu=False):
    """matmul rows: 1 thread = 1e-6 + 1e-9 flops, 2 threads = 2e-5 + 0.5e-9 flops."""
    laws = [("cpu", "cpu", 1, 1e-6, 1e-9), ("cpu", "cpu", 2, 2e-5, 0.5e-9)]
    if gpu:
        laws.append(("cuda", "fast", 1, 1e-4, 1e-12))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["op", "size", "flops", "bytes", "threads", "backend", "tier", "phase",
                    "median_s", "gflops", "gbs"])
        for backend, tier, t, a, b in laws:
            for n in (8, 16, 32, 64, 128, 256):
                flops, nbytes = 2.0 * n ** 3, 12.0 * n * n
                for phase, k in (("forward", 1), ("backward", 2), ("forward_backward", 3)):
                    s = a + b * k * flops
                    w.writerow(["matmul", n, k * flops, k * nbytes, t, backend, tier, phase, s,
                                k * flops / s * 1e-9, k * nbytes / s * 1e-9])
            for n in (1024, 65536, 4194304):  # relu: memory-bound, 2 threads pay from 65536
                flops, nbytes = float(n), 8.0 * n
                for phase, k in (("forward", 1), ("backward", 2), ("forward_backward", 3)):
                    s = (1e-7 if t == 1 else 3e-6) + (1.0 / t) * 1e-10 * k * nbytes
                    w.writerow(["relu", n, k * flops, k * nbytes, t, backend, tier, phase, s,
                                k * flops / s * 1e-9, k * nbytes / s * 1e-9])


def test_cost_model_from_csv_chooses_threads_and_places_a_graph(tmp_path):
    path = tmp_path / "study.csv"
    synthetic_csv(path)
    m = cppapi.CostModel.from_csv(str(path))
    m.max_threads = 2
    fit1 = [f for f in m.fits() if f["op"] == "matmul" and f["threads"] == 1
            and f["phase"] == "forward"][0]
    assert fit1["a"] == pytest.approx(1e-6, rel=1e-5)
    assert fit1["b"] == pytest.approx(1e-9, rel=1e-5)
    # Crossover: 0.5e-9 f = 1.9e-5 at f = 38000 FLOPs (n about 27).
    assert m.choose("matmul", 2 * 16 ** 3, 12 * 16 ** 2)["threads"] == 1
    assert m.choose("matmul", 2 * 64 ** 3, 12 * 64 ** 2)["threads"] == 2
    assert m.choose("sigmoid", 1e6, 1e6) is None
    with pytest.raises(ValueError, match="unknown op name"):
        m.choose("nonsense", 1, 1)
    with pytest.raises(ValueError):
        m.max_threads = 0

    before = cppapi.get_num_threads()
    cppapi.set_num_threads(1)
    try:
        g = cppapi.Graph()
        g.set_auto_placement(m)
        a = g.input(np.ones((64, 64), np.float32))
        b = g.input(np.full((64, 64), 0.5, np.float32))
        c = a @ b
        assert cppapi.get_num_threads() == 1  # restored after the 2-thread kernel
        np.testing.assert_allclose(c.numpy(), np.full((64, 64), 32.0))
        g.set_auto_placement(None)
    finally:
        cppapi.set_num_threads(before)


def run_report(tmp_path, gpu=False):
    path = tmp_path / "study.csv"
    synthetic_csv(path, gpu=gpu)
    peak = tmp_path / "peak.csv"
    peak.write_text("threads,gflops,gbs,load1\n1,50.0,10.0,0.1\n2,100.0,12.0,0.2\n")
    out = tmp_path / "out"
    env = dict(os.environ, MPLBACKEND="Agg")
    subprocess.run([sys.executable, str(ROOT / "bench" / "study_report.py"), "--csv", str(path),
                    "--peak", str(peak), "--out", str(out)], check=True, env=env)
    return out, (out / "report.md").read_text()


def test_study_report_states_what_the_data_say(tmp_path):
    out, text = run_report(tmp_path)
    # matmul: 2 threads win from n = 32 (crossover at n about 27).
    assert "**matmul**: 2 threads pay off from size 32" in text
    assert "**relu**: 2 threads pay off from size 65536" in text
    mem = next(line for line in text.splitlines() if line.startswith("- memory-bound"))
    comp = next(line for line in text.splitlines() if line.startswith("- compute-bound"))
    assert "relu" in mem and "matmul" not in mem
    assert "matmul" in comp and "relu" not in comp
    assert "No GPU rows" in text
    assert "- matmul: 8: 1, 16: 1, 32: 2, 64: 2, 128: 2, 256: 2" in text
    for png in ("threads_matmul.png", "threads_relu.png", "speedup_vs_size.png", "roofline.png"):
        assert (out / png).stat().st_size > 1000, png
    assert not (out / "crossover.png").exists()


def test_study_report_finds_the_gpu_crossover(tmp_path):
    out, text = run_report(tmp_path, gpu=True)
    # cuda: 1e-4 + 1e-12 f beats 2e-5 + 0.5e-9 f from f = 1.6e5 (n = 64: 5.2e5).
    assert "- matmul, cuda/fast: faster than the best CPU setting from size 64." in text
    assert (out / "crossover.png").stat().st_size > 1000


def test_study_report_refuses_a_csv_without_its_columns(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("op,size\nmatmul,8\n")
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "study_report.py"), "--csv",
                        str(bad), "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "lacks column(s)" in r.stderr


def study_binary():
    env = os.environ.get("LLDL_STUDY")
    cands = [Path(env)] if env else [ROOT / d / "study" for d in ("build", "build-study")]
    return next((c for c in cands if c.is_file()), None)


@pytest.mark.skipif(study_binary() is None, reason="bench/study not built (LLDL_STUDY=path)")
def test_study_refuses_bad_configurations_and_keeps_rows(tmp_path):
    exe, out = str(study_binary()), tmp_path / "s.csv"
    common = ["--csv", str(out), "--peak", str(tmp_path / "p.csv"), "--repeats", "1",
              "--min-time", "0"]
    for args, msg in ((["--threads", "0"], "thread count must be >= 1"),
                      (["--op", "nosuchop=4"], "unknown op 'nosuchop'"),
                      (["--op", "matmul=3x4"], "matmul size '3x4'"),
                      (["--op", "softmax=12"], "softmax size '12'")):
        r = subprocess.run([exe, *args, *common], capture_output=True, text=True)
        assert r.returncode == 2, args
        assert msg in r.stderr
    assert not out.exists()  # checked before anything ran
    r = subprocess.run([exe, "--op", "relu=4,16", "--threads", "1", *common],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out)))
    assert [(x["size"], x["phase"]) for x in rows] == [
        (s, p) for s in ("4", "16") for p in ("forward", "backward", "forward_backward")]
    assert all(float(x["median_s"]) > 0 for x in rows)
    # A second run appends; a run that fails its configuration leaves the rows alone.
    subprocess.run([exe, "--op", "relu=4", "--threads", "1", *common], check=True,
                   capture_output=True)
    subprocess.run([exe, "--threads", "-1", *common], capture_output=True)
    assert len(list(csv.DictReader(open(out)))) == 9
