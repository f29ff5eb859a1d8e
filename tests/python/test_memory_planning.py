"""Memory planning from Python: Graph.set_memory_planning gives the same
training as without it, memory_report() shows the planned block below bump
allocation, a released intermediate cannot be read, and NeuralNetwork2 passes
the setting on to its graph."""
import numpy as np
import pytest

import cppapi as C
from conftest import seed_network


def train(plan, batches=(16, 16, 16, 7, 16)):
    rng = np.random.default_rng(5)
    g = C.Graph()
    g.set_memory_planning(plan)
    W1 = g.param((6, 32), name="W1", seed=1)
    b1 = g.param((32,), name="b1", init="zeros")
    W2 = g.param((32, 3), name="W2", seed=2)
    b2 = g.param((3,), name="b2", init="zeros")
    opt = C.Optimizer(g, C.OptimiserType.Adam, lr=0.05)
    losses, reports = [], []
    for n in batches:
        X = rng.standard_normal((n, 6)).astype(np.float32)
        y = rng.integers(0, 3, n)
        logits = C.bias_add(C.relu(C.bias_add(g.input(X) @ W1, b1)) @ W2, b2)
        loss = C.cross_entropy(logits, g.input(y))
        losses.append(loss.item())
        g.backward(loss)
        opt.step()
        g.reset()
        reports.append(g.memory_report())
    return g, losses, reports, [p.numpy() for p in g.params()]


def test_planning_trains_identically_and_plans_less_memory():
    g0, l0, _, p0 = train(False)
    g1, l1, reps, p1 = train(True)
    assert g1.memory_planning and not g0.memory_planning
    assert l0 == l1
    for a, b in zip(p0, p1):
        assert np.array_equal(a, b)
    # Batch 16 is planned from its second step; 7 is new (a fallback).
    assert [r["last_step_planned"] for r in reps] == [False, True, True, False, True]
    r = reps[-1]
    assert set(r) >= {"peak_unplanned", "peak_planned", "sum_all_tensors", "max_live_bytes"}
    assert r["max_live_bytes"] <= r["peak_planned"] < r["peak_unplanned"]
    assert r["sum_all_tensors"] <= r["peak_unplanned"]
    assert r["graphs"] == 2
    assert g0.memory_report()["peak_planned"] == 0


def test_released_intermediate_raises():
    g = C.Graph()
    g.set_memory_planning()
    W = g.param((4, 8), name="W", seed=1)
    V = g.param((8, 2), name="V", seed=2)
    X = np.ones((3, 4), np.float32)
    for step in range(2):
        h = C.tanh(g.input(X) @ W)
        loss = C.sum(h @ V)
        g.backward(loss)
        if step == 1:  # served from the plan: h's memory went to a gradient
            with pytest.raises(ValueError, match="released by the memory planner"):
                h.numpy()
            assert np.isfinite(loss.item())
        g.reset()


def test_seed_network_passes_planning_on(diabetes):
    Xtr, Xte, Ytr, Yte = diabetes
    hist = []
    for plan in (False, True):
        nn = seed_network()
        nn.set_memory_planning(plan)
        assert nn.memory_planning == plan
        t = C.Trainer(nn, C.OptimiserType.SGD, 0.01)
        hist.append(t.fit(Xtr, Ytr, Xte, Yte, epochs=3, eval_every=1, batch_size=64, verbose=0))
        rep = nn.memory_report()
    assert hist[0]["train_loss"] == hist[1]["train_loss"]
    assert hist[0]["test_loss"] == hist[1]["test_loss"]
    assert rep["planned_steps"] > rep["fallback_steps"] > 0
