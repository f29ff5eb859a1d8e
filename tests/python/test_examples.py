"""The examples run as a user runs them: scripts in a fresh interpreter, the
notebook in a headless Jupyter kernel."""
import json
import re
import subprocess
import sys

from conftest import EXAMPLES, module_env


def run_example(name, *args, timeout=600):  # a guard against hangs, not a benchmark
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], env=module_env(),
                          cwd=EXAMPLES, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_seed_example_runs_unchanged():
    out = run_example("diabetes.py")
    # verbose=2, epochs=10, eval_every=10: exactly one evaluation line.
    lines = out.splitlines()
    assert len(lines) == 1, out
    m = re.fullmatch(r"epoch 10/10  train loss (\S+)  test loss (\S+)  elapsed \S+ s", lines[0])
    assert m, lines[0]
    train, test = map(float, m.groups())
    assert 0 < test < 30000 and 0 < train < 30000  # finite MSE of targets in 25..346


def test_digits_example_reaches_its_accuracy():
    out = run_example("digits.py", "--verbose", "0")
    m = re.search(r"test accuracy (\d\.\d+) .* training took (\d+\.\d+) s", out)
    assert m, out
    assert float(m.group(1)) >= 0.90, out


def test_graph_api_notebook_executes(tmp_path, monkeypatch):
    import nbclient  # the "test" extra: nbclient, nbformat, ipykernel, matplotlib
    import nbformat
    # A kernel spec of our own for this interpreter: a "python3" spec in the
    # user's Jupyter directories could start another Python without cppapi.
    spec = tmp_path / "kernels" / "lldl-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "lldl tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    path = EXAMPLES / "graph_api.ipynb"
    nb = nbformat.read(path, as_version=4)
    # Kept in git without outputs, so diffs show code changes only.
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code"), "clear the notebook's outputs"
    env = module_env()
    env.pop("MPLBACKEND", None)  # the notebook selects the inline backend itself
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="lldl-test",
                                     resources={"metadata": {"path": str(EXAMPLES)}})
    client.execute(env=env)  # the kernel's environment; raises CellExecutionError
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was shown"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    m = re.search(r"test accuracy (\d\.\d+)", text)
    assert m and float(m.group(1)) > 0.9, text


def test_fashion_cnn_example_reaches_90_percent_in_4_epochs():
    # Issue 4's bar: the example's network reaches >= 0.90 test accuracy on
    # Fashion-MNIST within 4 epochs (about a minute on 2 quiet cores).
    out = run_example("fashion_cnn.py", "--epochs", "4", "--verbose", "0", timeout=1800)
    m = re.search(r"test accuracy (\d\.\d+) after 4 epochs", out)
    assert m, out
    assert float(m.group(1)) >= 0.90, out
