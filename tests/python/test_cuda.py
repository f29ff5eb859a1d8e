"""The CUDA backend as Python sees it: status, tier switch, no crash without a GPU."""
import subprocess
import sys

import pytest

import cppapi
from conftest import module_env


def test_cuda_status_explains_availability():
    status = cppapi.cuda_status()
    assert isinstance(cppapi.cuda_available(), bool)
    assert status
    if not cppapi.cuda_available():
        assert "no CUDA device" in status or "built without CUDA" in status


def test_cuda_tier_switch_round_trips_and_refuses_unknown_names():
    before = cppapi.cuda_tier()
    try:
        cppapi.set_cuda_tier("naive")
        assert cppapi.cuda_tier() == "naive"
        cppapi.set_cuda_tier("fast")
        assert cppapi.cuda_tier() == "fast"
        with pytest.raises(ValueError, match="naive.*fast"):
            cppapi.set_cuda_tier("turbo")
    finally:
        cppapi.set_cuda_tier(before)


def test_cuda_fused_switch_picks_the_rung():
    tier, fused = cppapi.cuda_tier(), cppapi.cuda_fused()
    try:
        cppapi.set_cuda_tier("fast")
        cppapi.set_cuda_fused(False)
        assert (cppapi.cuda_fused(), cppapi.cuda_rung()) == (False, "middle")
        cppapi.set_cuda_fused(True)
        assert (cppapi.cuda_fused(), cppapi.cuda_rung()) == (True, "fast")
        cppapi.set_cuda_tier("naive")
        assert cppapi.cuda_rung() == "naive"
    finally:
        cppapi.set_cuda_tier(tier)
        cppapi.set_cuda_fused(fused)


def test_import_and_cpu_work_do_not_touch_the_gpu():
    # A fresh interpreter: importing and training on the CPU must work (and
    # exit cleanly) whether or not a driver or device exists.
    code = (
        "import numpy as np, cppapi\n"
        "g = cppapi.Graph()\n"
        "x = g.input(np.ones((2, 3), np.float32))\n"
        "print(cppapi.cuda_available(), float(cppapi.sum(x).item()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=module_env(), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "6.0"


def test_asking_for_a_cuda_graph_without_a_device_names_the_reason():
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        cppapi.Graph(backend="tpu")
    assert cppapi.Graph().backend == "cpu"
    if cppapi.cuda_available():
        assert cppapi.Graph(backend="cuda").backend == "cuda"
    else:
        with pytest.raises(RuntimeError, match="cuda") as e:
            cppapi.Graph(backend="cuda")
        assert cppapi.cuda_status().split(":")[0] in str(e.value)


def mlp_losses(backend, steps=20):
    import numpy as np
    g = cppapi.Graph(backend=backend)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((64, 10)).astype(np.float32)
    y_np = rng.standard_normal((64, 1)).astype(np.float32)
    W1 = g.param((10, 16), name="W1", seed=1)
    b1 = g.param((16,), name="b1", init="zeros")
    W2 = g.param((16, 1), name="W2", seed=2)
    b2 = g.param((1,), name="b2", init="zeros")
    opt = cppapi.Optimizer(g, cppapi.OptimiserType.Adam, lr=1e-2)
    losses = []
    for _ in range(steps):
        x, y = g.input(x_np), g.input(y_np)
        # Both spellings of a dense layer: matmul then bias_add, and the fused linear.
        loss = cppapi.mse_loss(cppapi.linear(cppapi.tanh(cppapi.bias_add(x @ W1, b1)), W2, b2), y)
        g.backward(loss)
        losses.append(loss.item())
        opt.step()
        g.reset()
    return losses, W1.numpy()


@pytest.mark.skipif(not cppapi.cuda_available(),
                    reason=f"needs a CUDA device: {cppapi.cuda_status()}")
def test_an_mlp_trained_on_the_gpu_from_python_follows_the_cpu():
    import numpy as np
    cpu, w_cpu = mlp_losses("cpu")
    gpu, w_gpu = mlp_losses("cuda")
    assert cpu[-1] < 0.7 * cpu[0]
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3)
    np.testing.assert_allclose(w_gpu, w_cpu, rtol=1e-3, atol=1e-5)


def test_the_mlp_of_the_gpu_test_learns_on_the_cpu():
    cpu, _ = mlp_losses("cpu")
    assert cpu[-1] < 0.7 * cpu[0]


def test_models_on_cuda_and_precision_options_without_a_device_name_the_reason():
    c = cppapi.GPTConfig(16, 8, 1, 2, 8)
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        cppapi.GPT(c, device="tpu")
    with pytest.raises(ValueError, match="precision must be 'fp32' or 'bf16'"):
        cppapi.set_precision("fp8")
    assert cppapi.GPT(c).device == "cpu"
    assert not cppapi.tf32() and cppapi.precision() == "fp32"
    if not cppapi.cuda_available():
        for make in (lambda: cppapi.GPT(c, device="cuda"),
                     lambda: cppapi.LSTM(cppapi.LSTMConfig(16), device="cuda"),
                     lambda: cppapi.set_tf32(True), lambda: cppapi.set_precision("bf16")):
            with pytest.raises(RuntimeError, match="not available"):
                make()


def test_gpt_fused_clip_step_equals_clip_then_step():
    import numpy as np
    c = cppapi.GPTConfig(16, 8, 1, 2, 8)
    a, b = cppapi.GPT(c, seed=3), cppapi.GPT(c, seed=3)
    for m in (a, b):
        m.configure_optimizer(lr=1e-2)
    b.set_grad_clip(0.1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = rng.integers(0, 16, (2, 8)), rng.integers(0, 16, (2, 8))
        for m in (a, b):
            m.loss(x, y)
            m.backward()
        norm = a.clip_grad_norm(0.1)
        a.step()
        b.step()
        assert b.grad_norm() == norm
        a.zero_grad()
        b.zero_grad()
    pa, pb = a.parameters(), b.parameters()
    for k in pa:
        assert np.array_equal(pa[k], pb[k]), k
