"""The sequence-model ops from Python: values against NumPy references,
float64 gradients against central differences, and bad inputs."""
import numpy as np
import pytest

import cppapi as C

rng = np.random.default_rng(99)


def gelu_ref(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def layer_norm_ref(x, gamma, beta, eps):
    m = x.mean(axis=-1, keepdims=True)
    v = x.var(axis=-1, keepdims=True)  # biased, as PyTorch
    return (x - m) / np.sqrt(v + eps) * gamma + beta


def test_forward_values_match_numpy():
    g = C.Graph()
    ids = np.array([[3, 0, 3], [1, 2, 4]])
    table = rng.standard_normal((5, 4)).astype(np.float32)
    out = C.embedding(g.input(ids), g.input(table))
    assert out.shape == [2, 3, 4]
    np.testing.assert_array_equal(out.numpy(), table[ids])

    x = rng.standard_normal((2, 3, 6)).astype(np.float32)
    gamma, beta = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    y = C.layer_norm(g.input(x), g.input(gamma), g.input(beta), eps=1e-3)
    np.testing.assert_allclose(y.numpy(), layer_norm_ref(x, gamma, beta, 1e-3), rtol=1e-5, atol=1e-5)

    z = np.linspace(-6, 6, 101).astype(np.float32)
    np.testing.assert_allclose(C.gelu(g.input(z)).numpy(), gelu_ref(z.astype(np.float64)),
                               rtol=1e-5, atol=1e-6)

    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(C.transpose(g.input(a), 0, -1).numpy(), np.swapaxes(a, 0, 2))
    np.testing.assert_array_equal(C.slice(g.input(a), axis=1, start=1, length=2).numpy(), a[:, 1:3])
    b = rng.standard_normal((2, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(C.concat(g.input(a), g.input(b), axis=1).numpy(),
                                  np.concatenate([a, b], axis=1))


# name -> (function of the differentiated leaves, their shapes)
OPS = {
    "embedding": (None, [(5, 3)]),  # ids added in run()
    "layer_norm": (lambda x, gm, bt: C.layer_norm(x, gm, bt), [(3, 5), (5,), (5,)]),
    "gelu": (C.gelu, [(3, 4)]),
    "transpose": (lambda x: C.transpose(x, 1, 2), [(2, 3, 4)]),
    "slice": (lambda x: C.slice(x, -1, 1, 2), [(3, 4)]),
    "concat": (lambda a, b: C.concat(a, b, 0), [(1, 3), (2, 3)]),
}


def run(g, name, values, grad):
    fn, _ = OPS[name]
    ts = [g.input(v, requires_grad=grad) for v in values]
    if name == "embedding":
        ids = g.input(np.array([4, 0, 4, 2, 4, 1]))
        return ts, C.embedding(ids, ts[0])
    return ts, fn(*ts)


@pytest.mark.parametrize("name", list(OPS))
def test_float64_gradients_match_finite_differences(name):
    shapes = OPS[name][1]
    values = [rng.uniform(-2, 2, s) for s in shapes]
    g = C.Graph("float64")
    ts, out = run(g, name, values, grad=True)
    v = rng.standard_normal(out.shape)
    g.backward(out, v)
    analytic = [t.grad for t in ts]
    g.reset()
    eps = 1e-6
    for i, a in enumerate(values):
        for idx in np.ndindex(a.shape):
            def f(d):
                vals = [x.copy() for x in values]
                vals[i][idx] += d
                _, o = run(g, name, vals, grad=False)
                s = float(np.sum(o.numpy() * v))
                g.reset()
                return s
            n = (f(eps) - f(-eps)) / (2 * eps)
            assert abs(analytic[i][idx] - n) <= 1e-5 + 1e-3 * abs(n), (name, i, idx, analytic[i][idx], n)


def test_bad_inputs_raise_python_errors_naming_the_op():
    g = C.Graph()
    table = g.input(np.zeros((65, 16), np.float32))
    with pytest.raises(ValueError, match="embedding: token id 70 at position 3 is out of range "
                                         "for a vocabulary of 65"):
        C.embedding(g.input(np.array([1, 2, 3, 70])), table)
    with pytest.raises(TypeError, match="embedding: input 0 is float32, expected int32"):
        C.embedding(g.input(np.zeros(4, np.float32)), table)
    x = g.input(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="layer_norm: eps must be finite and >= 0"):
        C.layer_norm(x, g.input(np.ones(3, np.float32)), g.input(np.zeros(3, np.float32)), eps=-1.0)
    with pytest.raises(ValueError, match="layer_norm: gamma must hold one value per feature"):
        C.layer_norm(x, g.input(np.ones(4, np.float32)), g.input(np.zeros(3, np.float32)))
    with pytest.raises(ValueError, match="transpose: dim1 2 is out of range for x of 2x3"):
        C.transpose(x, 0, 2)
    with pytest.raises(ValueError, match="slice: length must be >= 1"):
        C.slice(x, 0, 0, 0)
    with pytest.raises(ValueError, match="slice: start 4294967296"):
        C.slice(x, 0, 2 ** 32, 1)
    with pytest.raises(ValueError, match="concat: dims other than axis 0 must be equal"):
        C.concat(x, g.input(np.zeros((2, 4), np.float32)), 0)
    assert len(g.tape()) == 0
