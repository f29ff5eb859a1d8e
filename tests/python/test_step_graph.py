"""cppapi.StepGraph / Graph.capture: a training step captured into a CUDA graph
and replayed; on the CPU every run is the eager step. The losses of a
StepGraph loop must be those of the hand-written loop, bit for bit."""
import numpy as np
import pytest

import cppapi

N, D, H, C = 64, 20, 32, 5


def batch(s):
    rng = np.random.default_rng(100 + s)
    x = rng.uniform(-1, 1, (N, D)).astype(np.float32)
    y = ((x[:, 0] > 0) + 2 * (x[:, 1] > 0) + (x[:, 2] > 0.5)).astype(np.int32)
    return x, y


def model(backend):
    g = cppapi.Graph(backend=backend)
    W1 = g.param((D, H), name="W1", seed=1)
    b1 = g.param((H,), name="b1", init="zeros")
    W2 = g.param((H, C), name="W2", seed=2)
    b2 = g.param((C,), name="b2", init="zeros")
    opt = cppapi.Optimizer(g, cppapi.OptimiserType.Adam, lr=1e-2)

    def loss_of(x, y):
        return cppapi.cross_entropy(cppapi.linear(cppapi.tanh(cppapi.bias_add(x @ W1, b1)), W2, b2), y)
    return g, opt, loss_of, W1


def lr_at(s):  # a schedule: the replays must see each step's rate
    return 1e-2 if s < 5 else 5e-3


def eager(backend, steps=10):
    g, opt, loss_of, W1 = model(backend)
    losses = []
    for s in range(steps):
        opt.lr = lr_at(s)
        x, y = batch(s)
        loss = loss_of(g.input(x), g.input(y))
        g.backward(loss)
        opt.step()
        losses.append(loss.item())
        g.reset()
    return losses, W1.numpy()


def captured(backend, steps=10):
    g, opt, loss_of, W1 = model(backend)

    def step(x, y):
        loss = loss_of(x, y)
        g.backward(loss)
        opt.step()
        return loss
    sg = g.capture(step, [((N, D), "float32"), ((N,), "int32")])
    losses = []
    for s in range(steps):
        opt.lr = lr_at(s)
        losses.append(sg.run(*batch(s)))
    return losses, W1.numpy(), sg, opt


def test_a_step_graph_on_the_cpu_is_the_eager_loop_bit_for_bit():
    a, wa = eager("cpu")
    b, wb, sg, opt = captured("cpu")
    assert not sg.can_capture and not sg.captured and sg.runs == 10
    assert a == b
    assert a[-1] < a[0]
    np.testing.assert_array_equal(wa, wb)
    assert opt.steps == 10


def test_step_graph_refuses_bad_inputs_naming_them():
    g, opt, loss_of, _ = model("cpu")

    def step(x, y):
        loss = loss_of(x, y)
        g.backward(loss)
        opt.step()
        return loss
    sg = cppapi.StepGraph(g, step, [((N, D), "float32"), ((N,), "int32")])
    x, y = batch(0)
    with pytest.raises(ValueError, match="expected 2 input"):
        sg.run(x)
    with pytest.raises(ValueError, match="input 0 has shape"):
        sg.run(x[:10], y)
    with pytest.raises(TypeError, match="input 1 must be int32"):
        sg.run(x, y.astype(np.float32))
    bad = y.copy()
    bad[3] = C
    with pytest.raises(ValueError, match="label 5 at row 3"):
        sg.run(x, bad)
    with pytest.raises(TypeError, match="dtype must be"):
        cppapi.StepGraph(g, step, [((N, D), "int8")])
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        opt.lr = float("nan")
    assert np.isfinite(sg.run(x, y))


def test_a_step_function_that_returns_no_tensor_is_a_type_error():
    g, opt, loss_of, _ = model("cpu")
    sg = g.capture(lambda x, y: 1.0, [((N, D), "float32"), ((N,), "int32")])
    with pytest.raises(TypeError, match="must return the loss Tensor"):
        sg.run(*batch(0))


@pytest.mark.skipif(not cppapi.cuda_available(),
                    reason=f"needs a CUDA device: {cppapi.cuda_status()}")
def test_a_captured_step_on_the_gpu_gives_the_eager_losses_bit_for_bit():
    a, wa = eager("cuda")
    b, wb, sg, _ = captured("cuda")
    assert sg.can_capture and sg.captured
    assert a == b
    np.testing.assert_array_equal(wa, wb)
