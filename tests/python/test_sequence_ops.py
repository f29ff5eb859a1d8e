"""causal_attention, lstm and lstm_gates from Python: values against NumPy loops, gradient
shapes, and bad shapes raising ValueError that names the op and the shapes."""
import numpy as np
import pytest

import cppapi

rng = np.random.default_rng(7)


def attention_ref(qkv, n_head):
    B, T, C3 = qkv.shape
    C = C3 // 3
    D = C // n_head
    q, k, v = (qkv[..., i * C:(i + 1) * C].reshape(B, T, n_head, D).transpose(0, 2, 1, 3)
               for i in range(3))
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D)
    s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return (p @ v).transpose(0, 2, 1, 3).reshape(B, T, C)


def lstm_ref(x, w_ih, w_hh, b):
    B, T, _ = x.shape
    H = w_hh.shape[1]
    h, c, out = np.zeros((B, H)), np.zeros((B, H)), []
    sig = lambda z: 1 / (1 + np.exp(-z))
    for t in range(T):
        g = x[:, t] @ w_ih.T + h @ w_hh.T + b
        i, f, gg, o = sig(g[:, :H]), sig(g[:, H:2 * H]), np.tanh(g[:, 2 * H:3 * H]), sig(g[:, 3 * H:])
        c = f * c + i * gg
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out, 1)


@pytest.mark.parametrize("B,T,C,n_head", [(1, 1, 4, 1), (2, 6, 12, 3), (3, 9, 16, 4)])
def test_causal_attention_matches_numpy_and_has_a_gradient(B, T, C, n_head):
    qkv = rng.standard_normal((B, T, 3 * C))
    g = cppapi.Graph("float64")
    x = g.input(qkv, requires_grad=True)
    y = cppapi.causal_attention(x, n_head)
    assert y.shape == [B, T, C]
    np.testing.assert_allclose(y.numpy(), attention_ref(qkv, n_head), rtol=1e-12, atol=1e-12)
    g.backward(y, np.ones((B, T, C)))
    assert x.grad.shape == qkv.shape


def lstm_values(B, T, I, H):
    """x (B, T, I) and w_ih, w_hh, b in [-0.5, 0.5), float32."""
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    return (x, *(rng.uniform(-0.5, 0.5, s).astype(np.float32)
                 for s in [(4 * H, I), (4 * H, H), (4 * H,)]))


def test_lstm_matches_numpy_and_has_gradients():
    B, T, I, H = 3, 5, 4, 6
    x, w_ih, w_hh, b = lstm_values(B, T, I, H)
    g = cppapi.Graph()
    params = []
    for name, v in [("w_ih", w_ih), ("w_hh", w_hh), ("b", b)]:
        p = g.param(v.shape, name=name)
        p.assign(v)
        params.append(p)
    h = cppapi.lstm(g.input(x), *params)
    assert h.shape == [B, T, H]
    np.testing.assert_allclose(h.numpy(), lstm_ref(x, w_ih, w_hh, b), rtol=1e-5, atol=1e-6)
    g.backward(cppapi.sum(h))
    for p, v in zip(params, [w_ih, w_hh, b]):
        assert p.grad.shape == v.shape and np.abs(p.grad).sum() > 0


def test_lstm_gates_takes_the_projected_input():
    B, T, I, H = 3, 5, 4, 6
    x, w_ih, w_hh, b = lstm_values(B, T, I, H)
    g = cppapi.Graph()
    whh = g.param(w_hh.shape, name="w_hh")
    whh.assign(w_hh)
    gx = g.input(x @ w_ih.T + b, requires_grad=True)
    h = cppapi.lstm_gates(gx, whh)
    assert h.shape == [B, T, H]
    np.testing.assert_allclose(h.numpy(), lstm_ref(x, w_ih, w_hh, b), rtol=1e-5, atol=1e-6)
    g.backward(cppapi.sum(h))
    assert gx.grad.shape == (B, T, 4 * H) and whh.grad.shape == w_hh.shape
    assert np.abs(gx.grad).sum() > 0 and np.abs(whh.grad).sum() > 0


def test_bad_shapes_raise_value_error_naming_the_shapes():
    g = cppapi.Graph()
    with pytest.raises(ValueError, match=r"causal_attention: n_embd 10 is not divisible by n_head 3"):
        cppapi.causal_attention(g.input(np.zeros((2, 4, 30), np.float32)), 3)
    with pytest.raises(ValueError, match=r"causal_attention: qkv must be \(B, T, 3\*n_embd\), got 4x12"):
        cppapi.causal_attention(g.input(np.zeros((4, 12), np.float32)), 1)
    x = g.input(np.zeros((2, 5, 3), np.float32))
    w_ih = g.input(np.zeros((8, 3), np.float32))
    with pytest.raises(ValueError, match=r"lstm: w_hh must be \(4H, H\) = 8x2 for H = 2, got 8x3"):
        cppapi.lstm(x, w_ih, g.input(np.zeros((8, 3), np.float32)), g.input(np.zeros(8, np.float32)))
    with pytest.raises(ValueError, match=r"lstm_gates: gx must be \(B, T, 4H\) with H >= 1"):
        cppapi.lstm_gates(g.input(np.zeros((2, 5, 6), np.float32)), g.input(np.zeros((8, 2), np.float32)))
