"""The benchmark harness (bench/harness.py, bench/vs_pytorch.py): structure of
its output, not speed. A quick run of the smallest workload must give every
cell its repeats, a median inside its range, both frameworks and the ratios;
the harness must alternate the order and record a failing measurement."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT, module_env

pytest.importorskip("torch")  # vs_pytorch's PyTorch side; a test dependency
sys.path.insert(0, str(ROOT / "bench"))
import harness  # noqa: E402


def test_quick_run_reports_every_cell_with_its_repeats(tmp_path):
    out = tmp_path / "vs.json"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "vs_pytorch.py"), "--quick",
                        "--only", "diabetes", "--no-compile", "--threads", "1", "--repeats", "2",
                        "--json", str(out)], env=module_env(), capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["schema"] == harness.SCHEMA and doc["repeats"] == 2 and doc["threads"] == [1]
    cells = doc["cells"]
    assert {c["variant"] for c in cells} == {"lldl-fit", "lldl-graph", "torch-eager"}
    assert {c["framework"] for c in cells} == {"lldl", "torch"}
    for c in cells:
        assert c["workload"] == "diabetes" and c["threads"] == 1 and c["unit"] == "steps/s"
        assert c["errors"] == [] and c["repeats"] == 2 and len(c["rates"]) == 2, c
        assert 0 < c["min"] <= c["median"] <= c["max"], c
        assert c["rss_mib"] > 0 and c["measures"] and len(c["load1"]) == 2
    ratios = {(r["lldl"], r["torch"]): r for r in doc["ratios"]}
    assert set(ratios) == {("lldl-fit", "torch-eager"), ("lldl-graph", "torch-eager")}
    med = {c["variant"]: c["median"] for c in cells}
    r = ratios[("lldl-graph", "torch-eager")]
    assert r["by_threads"]["1"] == pytest.approx(med["lldl-graph"] / med["torch-eager"])
    assert r["best_vs_best"] == pytest.approx(r["by_threads"]["1"])
    assert "diabetes" in p.stdout and "lldl-graph" in p.stdout


def test_run_matrix_alternates_order_and_keeps_failures(tmp_path):
    log = tmp_path / "order.txt"
    child = ("import json, os, sys\n"
             "open(sys.argv[2], 'a').write(sys.argv[1] + ' ' + os.environ['OMP_NUM_THREADS'] + '\\n')\n"
             "if sys.argv[1] == 'bad': sys.exit('no such thing')\n"
             "print(json.dumps({'rate': float(len(open(sys.argv[2]).readlines()))}))\n")
    script = tmp_path / "child.py"
    script.write_text(child)
    runs, repeat_s = harness.run_matrix(["a", "bad", "b"], [1, 2], 2,
                                        lambda v, t: [str(script), v, str(log)], log=lambda s: None)
    order = log.read_text().split("\n")[:-1]
    assert order == ["a 1", "bad 1", "b 1", "a 2", "bad 2", "b 2",
                     "b 1", "bad 1", "a 1", "b 2", "bad 2", "a 2"]
    assert len(repeat_s) == 2
    bad = harness.summarise(runs[("bad", 1)])
    assert bad["median"] is None and len(bad["errors"]) == 2 and "no such thing" in bad["errors"][0]
    a = harness.summarise(runs[("a", 2)])
    assert a["rates"] == [4.0, 12.0] and a["median"] == 8.0 and (a["min"], a["max"]) == (4.0, 12.0)
