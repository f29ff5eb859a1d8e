"""Data parallel from Python (issue 15): cppapi.dist under `mpirun -np 2`.

2 ranks at batch B against 1 rank at batch 2B, the same seeds and data: the
losses and the final parameters must agree within 1e-5 relative, for an MLP
through Trainer.fit (Adam and SGD; its short last batch splits unevenly over
the ranks) and for a GPT stepped through the graph API with GradSync.
Skipped, with the reason, when lldl was built without MPI or mpirun is
missing. OpenMPI on one machine as root: scripts/mpirun.sh.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cppapi
from conftest import module_env

HERE = Path(__file__).resolve().parent
WORKER = HERE / "dist_worker.py"
MPIRUN = shutil.which("mpirun")
# OpenMPI on one machine without a network, also as root (see its comments).
WRAPPER = HERE.parents[1] / "scripts" / "mpirun.sh"

needs_mpi = pytest.mark.skipif(
    not cppapi.dist.built_with_mpi() or MPIRUN is None,
    reason="lldl built without MPI (LLDL_MPI) or no mpirun on PATH: apt-get install openmpi-bin libopenmpi-dev")


def run(np_, args, tmp_path, name):
    out = tmp_path / f"{name}.npz"
    env = module_env()
    env.update(OMP_NUM_THREADS="1", LLDL_DIST_TIMEOUT="60")
    cmd = [str(WRAPPER), "-np", str(np_), sys.executable, str(WORKER), *args, "--out", str(out)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return np.load(out), r


def assert_same_run(one, two, what, noise_only=None):
    """noise_only: {parameter: (slice, bound)} for entries whose gradient is
    zero in exact arithmetic, so that Adam, which divides by the root of the
    squared gradient, turns rounding noise into full steps: there the two runs
    are only required to move by less than `bound` apart."""
    noise_only = noise_only or {}
    assert int(one["world"]) == 1 and int(two["world"]) == 2
    l1, l2 = one["losses"], two["losses"]
    assert len(l1) == len(l2) > 0
    np.testing.assert_allclose(l2, l1, rtol=1e-5, atol=0, err_msg=f"{what}: losses, 2 ranks vs 1")
    names = sorted(k for k in one.files if k.startswith("p:"))
    assert names == sorted(k for k in two.files if k.startswith("p:"))
    for k in names:
        a, b = one[k].copy(), two[k].copy()
        if k[2:] in noise_only:
            sl, bound = noise_only[k[2:]]
            gap = np.abs(b[sl] - a[sl]).max()
            assert gap < bound, f"{what}: {k[2:]}[{sl}] moved {gap:.2e} apart, beyond the noise bound {bound}"
            a[sl] = b[sl] = 0
        scale = np.abs(a).max()
        rel = np.abs(b - a).max() / scale
        assert rel <= 1e-5, f"{what}: parameter {k[2:]} differs by {rel:.2e} relative (max abs over max |value|)"
    # The runs really trained: a test of two idle runs would pass trivially.
    assert l1[-1] < l1[0], f"{what}: the loss did not fall ({l1[0]} -> {l1[-1]})"


@needs_mpi
@pytest.mark.parametrize("optimiser", ["Adam", "SGD"])
def test_fit_on_two_ranks_matches_one_rank_at_twice_the_batch(tmp_path, optimiser):
    one, _ = run(1, ["--model", "mlp", "--batch", "16", "--optimiser", optimiser], tmp_path, "one")
    two, _ = run(2, ["--model", "mlp", "--batch", "8", "--optimiser", optimiser], tmp_path, "two")
    assert len(one["losses"]) == 7  # 7 epochs of 3 steps: 21 steps
    assert_same_run(one, two, f"MLP, Trainer.fit, {optimiser}")


@needs_mpi
def test_graph_api_gpt_with_gradsync_on_two_ranks_matches_one_rank(tmp_path):
    one, _ = run(1, ["--model", "gpt", "--batch", "4", "--epochs", "20"], tmp_path, "one")
    two, _ = run(2, ["--model", "gpt", "--batch", "2", "--epochs", "20"], tmp_path, "two")
    # The key bias (the middle third of c_attn.bias) adds the same q.b_k to
    # every score of a query row, which softmax cancels: its gradient is zero
    # but for rounding, and AdamW (lr 3e-3, 20 steps) moves it by noise.
    # Everything else, losses included, must agree to 1e-5.
    C = 16
    key_bias = {f"h.{i}.attn.c_attn.bias": (slice(C, 2 * C), 20 * 3e-3) for i in range(2)}
    assert_same_run(one, two, "GPT, graph API + GradSync", noise_only=key_bias)


@needs_mpi
def test_only_rank_zero_prints_progress(tmp_path):
    _, r = run(2, ["--model", "mlp", "--batch", "8", "--epochs", "3", "--verbose", "2"], tmp_path, "verbose")
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("epoch")]
    assert len(lines) == 3, f"expected one line per epoch from rank 0 only, got:\n{r.stdout}"


def test_dist_without_mpirun_is_one_rank():
    # This process was not started by mpirun: a job of one rank either way.
    cppapi.dist.init()
    assert cppapi.dist.rank() == 0 and cppapi.dist.world_size() == 1
    a = np.arange(5, dtype=np.float32)
    cppapi.dist.allreduce_mean(a)
    np.testing.assert_array_equal(a, np.arange(5, dtype=np.float32))
    assert cppapi.dist.allreduce_scalar(2.5, "sum") == 2.5


def test_dist_refuses_bad_arguments():
    cppapi.dist.init()
    with pytest.raises(ValueError, match="op must be 'mean', 'sum', 'min' or 'max'"):
        cppapi.dist.allreduce_scalar(1.0, "median")
    with pytest.raises(TypeError, match="float32 or float64"):
        cppapi.dist.allreduce_mean(np.arange(3, dtype=np.int32))
    with pytest.raises(ValueError, match="C-contiguous and writable"):
        cppapi.dist.allreduce_mean(np.zeros((4, 4), np.float32)[:, 1])
    with pytest.raises(TypeError, match="expected a Graph, NeuralNetwork2, GPT or LSTM"):
        cppapi.dist.GradSync(3)
