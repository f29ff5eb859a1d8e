"""bench/dist_scaling.py: the alpha-beta fit recovers known constants from
synthetic measurements, and the ring model behaves as its formula says."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("dist_scaling", ROOT / "bench" / "dist_scaling.py")
ds = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ds)

ALPHA, BETA, GAMMA = 2e-6, 5e9, 0.2e-9


def synthetic_csv(path):
    lines = ["kind,ranks,bytes,iters,repeats,median_us,min_us,max_us"]
    for k in range(13):
        m = 4 * 4**k
        pp = ALPHA + m / BETA
        ar = 2 * (ALPHA + m / (2 * BETA)) + m / 2 * GAMMA
        for kind, t in (("pingpong", pp), ("allreduce", ar)):
            us = t * 1e6
            lines.append(f"{kind},2,{m},10,5,{us},{us * 0.99},{us * 1.01}")
    path.write_text("\n".join(lines) + "\n")


def test_fit_recovers_alpha_beta_gamma(tmp_path):
    csv = tmp_path / "comm.csv"
    synthetic_csv(csv)
    rows = ds.read_csv(csv)
    pp = [r for r in rows if r["kind"] == "pingpong"]
    ar = [r for r in rows if r["kind"] == "allreduce"]
    alpha, beta = ds.fit_alpha_beta(pp)
    assert alpha == pytest.approx(ALPHA, rel=1e-6) and beta == pytest.approx(BETA, rel=1e-6)
    assert ds.fit_gamma(ar, alpha, beta, 4 << 20) == pytest.approx(GAMMA, rel=1e-6)


def test_ring_model():
    m = 100e6
    assert ds.ring_allreduce_s(1, m, ALPHA, BETA, GAMMA, 4 << 20) == 0
    # Two nodes, one bucket: 2 latencies, m/beta on the wire, half the bytes summed.
    assert ds.ring_allreduce_s(2, m, ALPHA, BETA, GAMMA, 1 << 30) == pytest.approx(2 * ALPHA + m / BETA + m / 2 * GAMMA)
    # The bandwidth term approaches 2 m / beta; more nodes never make it cheaper.
    ts = [ds.ring_allreduce_s(n, m, ALPHA, BETA, 0, 4 << 20) for n in ds.NODES]
    assert ts == sorted(ts) and ts[-1] < 2 * m / BETA + 26 * 2 * 63 * ALPHA
    assert ds.gpt_params(50257, 1024, 12, 768) == 124_439_808  # GPT-2 small, tied LM head


def test_script_writes_table_plot_and_json(tmp_path):
    csv = tmp_path / "comm.csv"
    synthetic_csv(csv)
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "dist_scaling.py"), "--csv", str(csv),
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "dist_scaling.json").read_text())
    assert {p["nodes"] for p in d["predictions"]} == set(ds.NODES)
    for p in d["predictions"]:
        assert 0 < p["eff_no_overlap"] <= p["eff_overlap"] <= 1 + 1e-12  # t / (t + 0) in floating point
    assert (tmp_path / "dist_scaling.png").stat().st_size > 10_000
    assert "| gpt2_124m | 10 Gbit/s |" in (tmp_path / "dist_scaling.md").read_text()
