"""The graph API from Python: gradients against finite differences, zero-copy
inputs, the tape, a training loop with an Optimizer.

Criteria from TESTING.md: float64 central differences with eps 1e-6 and
|analytic - numeric| <= 1e-5 + 1e-3 |numeric| per entry; float32 with a larger
step, 4-point differences and a mean relative error bound.
"""
import numpy as np
import pytest

import cppapi as C

rng = np.random.default_rng(1234)


def soft_targets(shape):
    t = rng.uniform(0.1, 1.0, shape)
    return t / t.sum(axis=1, keepdims=True)


def mlp(x, W1, b1, W2, b2, y):
    """Two layers, cross-entropy, plus an L2 term: W1 is used twice."""
    h = C.sigmoid(C.bias_add(x @ W1, b1))
    loss = C.cross_entropy(C.bias_add(C.relu(h @ W2), b2), y)
    return loss + C.scale(C.sum(W1 * W1), 0.01)


# name -> (function of the tensors, shapes of the differentiated leaves,
# constant arrays appended after the leaves: targets, labels).
OPS = {
    "matmul": (lambda a, b: a @ b, [(3, 4), (4, 2)], []),
    "matmul_trans_a": (lambda a, b: C.matmul(a, b, trans_a=True), [(4, 3), (4, 2)], []),
    "matmul_trans_b": (lambda a, b: C.matmul(a, b, trans_b=True), [(3, 4), (2, 4)], []),
    "matmul_trans_both": (lambda a, b: C.matmul(a, b, True, True), [(4, 3), (2, 4)], []),
    "bias_add": (C.bias_add, [(3, 4), (4,)], []),
    "linear": (C.linear, [(3, 4), (4, 2), (2,)], []),
    "linear_trans_b": (lambda x, w, b: C.linear(x, w, b, trans_b=True), [(3, 4), (2, 4), (2,)], []),
    "linear_gelu": (C.linear_gelu, [(3, 4), (4, 2), (2,)], []),
    "linear_gelu_trans_b": (lambda x, w, b: C.linear_gelu(x, w, b, trans_b=True), [(3, 4), (2, 4), (2,)], []),
    "add": (lambda a, b: a + b, [(3, 4), (3, 4)], []),
    "sub": (lambda a, b: a - b, [(3, 4), (3, 4)], []),
    "mul": (lambda a, b: a * b, [(3, 4), (3, 4)], []),
    "mul_same_tensor": (lambda a: a * a, [(3, 4)], []),
    "scale": (lambda x: 2.5 * x, [(3, 4)], []),
    "neg": (lambda x: -x, [(3, 4)], []),
    "sum_all": (lambda x: C.sum(x), [(3, 4)], []),
    "sum_axis0": (lambda x: C.sum(x, 0), [(3, 4)], []),
    "sum_axis1": (lambda x: C.sum(x, axis=1), [(3, 4)], []),
    "mean_all": (lambda x: C.mean(x), [(3, 4)], []),
    "mean_axis0": (lambda x: C.mean(x, 0), [(3, 4)], []),
    "sigmoid": (C.sigmoid, [(3, 4)], []),
    "tanh": (C.tanh, [(3, 4)], []),
    "relu": (C.relu, [(3, 4)], []),
    "identity": (C.identity, [(3, 4)], []),
    "silu": (C.silu, [(3, 4)], []),
    "softmax": (C.softmax, [(3, 5)], []),
    "log_softmax": (C.log_softmax, [(3, 5)], []),
    "mse_loss": (C.mse_loss, [(4, 2)], [rng.standard_normal((4, 2))]),
    "cross_entropy_soft": (C.cross_entropy, [(4, 5)], [soft_targets((4, 5))]),
    "cross_entropy_one_hot": (C.cross_entropy, [(4, 5)], [np.eye(5)[[1, 0, 4, 4]]]),
    "cross_entropy_labels": (C.cross_entropy, [(4, 5)], [np.array([0, 4, 2, 2])]),
    "mlp": (mlp, [(5, 3), (3, 4), (4,), (4, 3), (3,)], [np.array([0, 1, 2, 1, 0])]),
}


def leaf_values(shapes, seed):
    # Values in +-[0.2, 1.2]: relu's kink stays far from every step.
    r = np.random.default_rng(seed)
    return [r.choice([-1.0, 1.0], s) * r.uniform(0.2, 1.2, s) for s in shapes]


def forward(g, fn, leaves, consts, grad=False):
    ts = [g.input(a, requires_grad=grad) for a in leaves] + [g.input(c) for c in consts]
    return ts, fn(*ts)


def vjp_check(name, dtype):
    """Analytic v^T J (backward with upstream v) against central differences
    of v . f(x) for every leaf entry. Returns (analytic, numeric) per leaf."""
    fn, shapes, consts = OPS[name]
    np_dtype = np.float64 if dtype == "float64" else np.float32
    leaves = [a.astype(np_dtype) for a in leaf_values(shapes, seed=len(name))]
    consts = [c.astype(np.int32) if c.dtype.kind == "i" else c.astype(np_dtype) for c in consts]
    g = C.Graph(dtype)
    ts, out = forward(g, fn, leaves, consts, grad=True)
    v = np.random.default_rng(7).standard_normal(out.shape).astype(np_dtype)
    g.backward(out, v)
    analytic = [t.grad for t in ts[:len(leaves)]]
    for a, t in zip(analytic, ts):
        assert a.shape == tuple(t.shape), f"{name}: gradient shape {a.shape} != input {t.shape}"
    g.reset()

    def f(vals):
        _, o = forward(g, fn, vals, consts)
        val = float(np.sum(o.numpy().astype(np.float64) * v))
        g.reset()
        return val

    eps = 1e-6 if dtype == "float64" else 1e-2
    numeric = []
    for i, a in enumerate(leaves):
        n = np.zeros(a.shape)
        for idx in np.ndindex(a.shape):
            def at(delta):
                vals = [x.copy() for x in leaves]
                vals[i][idx] += delta
                return f(vals)
            if dtype == "float64":
                n[idx] = (at(eps) - at(-eps)) / (2 * eps)
            else:  # 4-point: O(eps^4) truncation error
                n[idx] = (8 * (at(eps) - at(-eps)) - (at(2 * eps) - at(-2 * eps))) / (12 * eps)
        numeric.append(n)
    return analytic, numeric


@pytest.mark.parametrize("name", list(OPS))
def test_float64_gradients_match_finite_differences(name):
    analytic, numeric = vjp_check(name, "float64")
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        bad = np.abs(a - n) > 1e-5 + 1e-3 * np.abs(n)
        assert not bad.any(), (f"{name}, input {i}: analytic {a[bad]} vs numeric {n[bad]} "
                               f"at {np.argwhere(bad)[:3].tolist()}")


@pytest.mark.parametrize("name", ["matmul", "bias_add", "linear", "linear_trans_b", "mul", "sigmoid", "tanh", "silu", "softmax",
                                  "log_softmax", "mse_loss", "cross_entropy_labels", "mlp"])
def test_float32_gradients_are_sane(name):
    analytic, numeric = vjp_check(name, "float32")
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        assert np.isfinite(a).all(), f"{name}, input {i}: non-finite gradient"
        assert a.dtype == np.float32
        big = np.abs(n) + np.abs(a) > 1e-3  # relative error is meaningless near 0
        rel = np.abs((n - a)[big]) / (np.abs(n) + np.abs(a))[big]
        assert rel.mean() <= 1e-3 if rel.size else True, f"{name}, input {i}: mean rel {rel.mean()}"
        np.testing.assert_allclose(a, n, rtol=1e-2, atol=1e-3, err_msg=f"{name}, input {i}")


def test_float32_and_float64_graphs_agree():
    fn, shapes, consts = OPS["mlp"]
    leaves = leaf_values(shapes, seed=3)
    grads = {}
    for dtype, npd in (("float64", np.float64), ("float32", np.float32)):
        g = C.Graph(dtype)
        ts, loss = forward(g, fn, [a.astype(npd) for a in leaves], consts, grad=True)
        g.backward(loss)
        grads[dtype] = (loss.item(), [t.grad for t in ts[:len(leaves)]])
    assert grads["float32"][0] == pytest.approx(grads["float64"][0], rel=1e-5)
    for a32, a64 in zip(grads["float32"][1], grads["float64"][1]):
        np.testing.assert_allclose(a32, a64, rtol=1e-4, atol=1e-6)


def test_backward_twice_accumulates_and_zero_upstream_gives_zero():
    g = C.Graph("float64")
    x = g.input(rng.standard_normal((3, 4)), requires_grad=True)
    W = g.param((4, 2), name="W", seed=5)
    out = C.tanh(x @ W)
    v = rng.standard_normal((3, 2))
    g.backward(out, v)
    first = (x.grad, W.grad)
    g.zero_grad()
    g.backward(out, v)
    np.testing.assert_array_equal(x.grad, first[0])  # identical on a re-run
    np.testing.assert_array_equal(W.grad, first[1])
    g.backward(out, v)  # without zero_grad: gradients accumulate
    np.testing.assert_allclose(W.grad, 2 * first[1], rtol=1e-15)
    g.zero_grad()
    g.backward(out, np.zeros((3, 2)))
    assert not x.grad.any() and not W.grad.any()


def test_float32_c_contiguous_inputs_are_borrowed_not_copied():
    g = C.Graph()
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = g.input(a)
    a[0, 0] = 42.0  # the tensor sees the array's own memory
    assert t.numpy()[0, 0] == 42.0
    t.assign(np.ones((2, 3), np.float32))
    assert (a == 1).all()
    # Other dtypes and layouts are converted once (a copy): changes do not show.
    for other in (np.arange(6.0).reshape(2, 3), np.asfortranarray(a), a.copy()[:, ::2]):
        u = g.input(other)
        np.testing.assert_array_equal(u.numpy(), np.asarray(other, np.float32))
        other[0, 0] = -7.0
        assert u.numpy()[0, 0] != -7.0
    ro = np.ones((2, 2), np.float32)
    ro.flags.writeable = False
    r = g.input(ro)
    r.assign(np.zeros((2, 2), np.float32))  # writes the graph's copy, not `ro`
    assert (ro == 1).all() and not r.numpy().any()


def test_assign_keeps_the_tensors_dtype():
    g = C.Graph("float64")
    W = g.param((3, 2), name="W")
    third = np.arange(6.0).reshape(3, 2) / 3
    W.assign(third)  # float64 values are not rounded through float32
    np.testing.assert_array_equal(W.numpy(), third)
    W.assign(third.astype(np.float32))
    np.testing.assert_array_equal(W.numpy(), third.astype(np.float32).astype(np.float64))
    labels = g.input(np.array([1, 2]))
    labels.assign(np.array([3, 4], np.int64))
    np.testing.assert_array_equal(labels.numpy(), [3, 4])
    with pytest.raises(TypeError, match="value has dtype float64; the tensor holds int32 labels"):
        labels.assign(np.array([0.5, 1.0]))
    with pytest.raises(TypeError, match="value has dtype int64"):
        g.param((2,), name="b").assign(np.array([1, 2]))


@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linear_values_and_gradients_match_numpy(trans_b, dtype):
    """linear(x, w, b) = x @ op(w) + b; with upstream v: dx = v op(w)^T,
    dw = x^T v (v^T x when w is (N, K)), db = the column sums of v. x and w
    are intermediates (their gradients are overwritten, not accumulated)."""
    npd = np.float64 if dtype == "float64" else np.float32
    r = np.random.default_rng(5 + trans_b)
    M, K, N = 70, 33, 19
    x0 = r.standard_normal((M, K)).astype(npd)
    w0 = r.standard_normal((N, K) if trans_b else (K, N)).astype(npd)
    b0 = r.standard_normal(N).astype(npd)
    v = r.standard_normal((M, N)).astype(npd)
    g = C.Graph(dtype)
    tx, tw, tb = (g.input(a, requires_grad=True) for a in (x0, w0, b0))
    x, w = C.scale(tx, 2.0), C.scale(tw, -0.5)
    y = C.linear(x, w, tb, trans_b=trans_b)
    assert y.shape == [M, N] and g.tape()[-1]["op"] == "linear"
    xd, wd = 2.0 * x0.astype(np.float64), -0.5 * w0.astype(np.float64)
    opw = wd.T if trans_b else wd
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == "float64" else dict(rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(y.numpy(), xd @ opw + b0, **tol)
    g.backward(y, v)
    vd = v.astype(np.float64)
    np.testing.assert_allclose(x.grad, vd @ opw.T, **tol)
    np.testing.assert_allclose(w.grad, vd.T @ xd if trans_b else xd.T @ vd, **tol)
    np.testing.assert_allclose(tb.grad, vd.sum(axis=0), **tol)
    np.testing.assert_allclose(tx.grad, 2.0 * (vd @ opw.T), **tol)
    # The same graph with bias_add(matmul(...)) gives the same values.
    g.reset()
    tx2, tw2, tb2 = (g.input(a, requires_grad=True) for a in (x0, w0, b0))
    y2 = C.bias_add(C.matmul(C.scale(tx2, 2.0), C.scale(tw2, -0.5), trans_b=trans_b), tb2)
    np.testing.assert_allclose(y2.numpy(), xd @ opw + b0, **tol)


def test_linear_refuses_bad_shapes():
    g = C.Graph()
    x, w = g.input(np.ones((4, 3), np.float32)), g.input(np.ones((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"linear: bias must be a vector of the output's 5 columns "
                                         r"\(x is 4x3, w is 3x5, b is 6\)"):
        C.linear(x, w, g.input(np.ones(6, np.float32)))
    with pytest.raises(ValueError, match=r"linear: inner dimensions differ: x is 4x3, w\^T is 5x3"):
        C.linear(x, w, g.input(np.ones(3, np.float32)), trans_b=True)
    assert g.tape() == []


def test_training_loop_with_an_optimizer_fits_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0])
    g = C.Graph()
    W1 = g.param((2, 8), name="W1", seed=1)
    b1 = g.param((8,), name="b1", init="zeros")
    W2 = g.param((8, 2), name="W2", seed=2)
    b2 = g.param((2,), name="b2", init="zeros")
    opt = C.Optimizer(g, C.OptimiserType.Adam, lr=0.05)
    losses = []
    for _ in range(300):
        logits = C.bias_add(C.tanh(C.bias_add(g.input(X) @ W1, b1)) @ W2, b2)
        loss = C.cross_entropy(logits, g.input(y))
        losses.append(loss.item())
        g.backward(loss)
        opt.step()
        g.reset()
    assert opt.steps == 300
    assert losses[-1] < 0.05 < losses[0]
    logits = C.bias_add(C.tanh(C.bias_add(g.input(X) @ W1, b1)) @ W2, b2)
    assert (logits.numpy().argmax(axis=1) == y).all()


def test_tape_params_and_stats():
    g = C.Graph()
    W = g.param((3, 2), name="W", init="he_normal", seed=3)
    x = g.input(np.ones((4, 3), np.float32))
    loss = C.mean(C.relu(x @ W))
    assert [e["op"] for e in g.tape()] == ["matmul", "relu", "mean"]
    assert [p.name for p in g.params()] == ["W"] and g.param_by_name("W").shape == [3, 2]
    assert loss.shape == [] and "requires_grad" in repr(loss)
    stats = g.stats()
    assert stats["tape_length"] == 3 and stats["step"]["in_use"] > 0 and stats["step_number"] == 1
    assert stats["persistent"]["in_use"] >= 3 * 2 * 4
    assert set(C.op_names()) >= {"matmul", "bias_add", "cross_entropy", "softmax"}
    g.reset()
    assert g.stats()["step"]["in_use"] == 0 and g.tape() == [] and g.stats()["step_number"] == 2


def test_graph_errors_name_the_op_and_shapes():
    g = C.Graph()
    a = g.input(np.ones((2, 3), np.float32))
    b = g.input(np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"matmul.*2x3.*4x5"):
        a @ b
    with pytest.raises(ValueError, match=r"label 7 .*out of range for 3 classes"):
        C.cross_entropy(a, g.input(np.array([0, 7])))
    with pytest.raises(ValueError, match=r"value: shape \(3,\) does not match tensor 2x3"):
        a.assign(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="loss must have one element"):
        g.backward(a * a)
    with pytest.raises(ValueError, match=r"5 dimensions.*at most 4"):
        g.input(np.ones((1, 1, 1, 1, 1), np.float32))
    with pytest.raises(TypeError, match="input has dtype int64"):
        g.input(np.ones((2, 2), np.int64), requires_grad=True)
    with pytest.raises(TypeError, match="dtype must be 'float32' or 'float64'"):
        C.Graph("int8")
    with pytest.raises(ValueError, match="unknown init 'glorot'"):
        g.param((2, 2), init="glorot")
    g.reset()
    with pytest.raises(ValueError, match="released by reset"):
        a.numpy()
    with pytest.raises(ValueError, match="learning rate"):
        C.Optimizer(g, C.OptimiserType.SGD, lr=0.0)


def test_silu_values_match_numpy_and_refuse_int_input():
    x = np.array([[-30.0, -2.5, -0.5, 0.0], [0.25, 1.0, 4.0, 40.0]], dtype=np.float32)
    g = C.Graph()
    y = C.silu(g.input(x)).numpy()
    want = x.astype(np.float64) / (1.0 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-30)
    with pytest.raises(TypeError, match=r"silu: input 0 is int32, expected float32"):
        C.silu(g.input(np.array([1, 2], dtype=np.int32)))
