"""The CNN half of cppapi: conv/pool/reshape/dropout/batch-norm in the graph
API (gradients against finite differences in float64) and the seed API's
image layers, input_shape handling and their errors."""
import numpy as np
import pytest

import cppapi

L, A = cppapi.LayerType, cppapi.ActivationType


def numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        hi = f(x)
        x[i] = old - eps
        lo = f(x)
        x[i] = old
        g[i] = (hi - lo) / (2 * eps)
    return g


@pytest.mark.parametrize("stride,padding,pool", [(1, 0, "max"), (2, 1, "avg"), (1, 2, "max")])
def test_conv_pool_gradients_match_finite_differences(stride, padding, pool):
    rng = np.random.default_rng(stride * 10 + padding)
    x0 = rng.standard_normal((2, 2, 6, 6))
    w0 = rng.standard_normal((3, 2, 3, 3))
    b0 = rng.standard_normal(3)
    r = None

    def loss(x, w, b, want_grads=False):
        nonlocal r
        g = cppapi.Graph("float64")
        tx, tw, tb = (g.input(v, requires_grad=True) for v in (x, w, b))
        y = cppapi.conv2d(tx, tw, tb, stride=stride, padding=padding)
        y = (cppapi.max_pool2d if pool == "max" else cppapi.avg_pool2d)(y, 2)
        y = cppapi.flatten(y)
        if r is None:
            r = rng.standard_normal(y.shape)
        out = cppapi.sum(y * g.input(r))
        if not want_grads:
            return out.item()
        g.backward(out)
        return tx.grad, tw.grad, tb.grad

    gx, gw, gb = loss(x0, w0, b0, want_grads=True)
    for analytic, idx in ((gx, 0), (gw, 1), (gb, 2)):
        args = [x0.copy(), w0.copy(), b0.copy()]

        def f(v, idx=idx, args=args):
            args[idx] = v
            return loss(*args)

        numeric = numeric_grad(f, args[idx])
        np.testing.assert_allclose(analytic, numeric, rtol=1e-3, atol=1e-5)


def test_reshape_is_a_view_and_batch_norm_normalises():
    g = cppapi.Graph()
    x = g.input(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    y = cppapi.reshape(x, (6, 4))
    assert y.shape == [6, 4]
    np.testing.assert_array_equal(y.numpy(), np.arange(24, dtype=np.float32).reshape(6, 4))
    data = np.random.default_rng(0).standard_normal((16, 3, 2, 2)).astype(np.float32) * 5 + 2
    h = g.input(data)
    gamma, beta = g.param((3,), init="zeros"), g.param((3,), init="zeros")
    gamma.assign(np.ones(3, np.float32))
    rm, rv = g.buffer((3,)), g.buffer((3,), fill=1.0)
    out = cppapi.batch_norm(h, gamma, beta, rm, rv, training=True).numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, atol=1e-3)
    np.testing.assert_allclose(rm.numpy(), 0.1 * data.mean(axis=(0, 2, 3)), rtol=1e-4)


def small_cnn(**kw):
    return cppapi.NeuralNetwork2([
        cppapi.Layer2(L.Conv2D, 4, A.ReLU, kernel=3, padding=1),
        cppapi.Layer2(L.MaxPool2D, kernel=2),
        cppapi.Layer2(L.BatchNorm),
        cppapi.Layer2(L.Flatten),
        cppapi.Layer2(L.Dropout, rate=0.2),
        cppapi.Layer2(L.Dense, 3, A.Linear)], cppapi.LossType.CROSS_ENTROPY, **kw)


def stripes(n, rng):
    """Images with a horizontal, vertical or no stripe: a task a CNN learns."""
    x = rng.random((n, 1, 8, 8), dtype=np.float32) * 0.3
    y = rng.integers(0, 3, n).astype(np.int32)
    x[y == 0, 0, 3, :] += 1.0
    x[y == 1, 0, :, 3] += 1.0
    return x, y


def test_seed_api_cnn_learns_and_accepts_rows_or_images():
    rng = np.random.default_rng(1)
    x, y = stripes(384, rng)
    xt, yt = stripes(128, rng)
    nn = small_cnn(input_shape=(1, 8, 8))
    h = cppapi.Trainer(nn, cppapi.OptimiserType.Adam, 1e-2).fit(
        x, y, xt, yt, epochs=15, eval_every=5, batch_size=32, verbose=0)
    assert h["test_accuracy"][-1] >= 0.95
    # The same images as rows of 64 values give the same predictions.
    np.testing.assert_array_equal(nn.predict(x[:10]), nn.predict(x[:10].reshape(10, 64)))


@pytest.mark.parametrize("make,pattern", [
    (lambda: small_cnn(input_shape=(1, 8, 8)).predict(np.zeros((2, 2, 8, 8), np.float32)),
     r"X has shape \(2, 2, 8, 8\).*\(N, 1, 8, 8\)"),
    (lambda: cppapi.Trainer(small_cnn(), cppapi.OptimiserType.SGD, 0.1).fit(
        np.zeros((4, 64), np.float32), np.zeros(4, np.int32), verbose=0),
     r"layer 0 \(Conv2D\) needs image input"),
    (lambda: cppapi.Trainer(cppapi.NeuralNetwork2([
        cppapi.Layer2(L.Conv2D, 4, kernel=9), cppapi.Layer2(L.Flatten), cppapi.Layer2(L.Dense, 2)],
        cppapi.LossType.CROSS_ENTROPY, input_shape=(1, 8, 8)), cppapi.OptimiserType.SGD, 0.1).fit(
        np.zeros((4, 64), np.float32), np.zeros(4, np.int32), verbose=0),
     r"layer 0 \(Conv2D\): kernel 9 is larger than its \(padded\) input 1x8x8"),
    (lambda: cppapi.NeuralNetwork2([cppapi.Layer2(L.MaxPool2D), cppapi.Layer2(L.Dense, 2)],
                                   cppapi.LossType.MSE), r"layer 0 \(MaxPool2D\) needs kernel > 0"),
    (lambda: cppapi.NeuralNetwork2([cppapi.Layer2(L.Dropout, rate=1.0), cppapi.Layer2(L.Dense, 2)],
                                   cppapi.LossType.MSE), r"rate must be in \[0, 1\)"),
    (lambda: cppapi.NeuralNetwork2([cppapi.Layer2(L.Conv2D, 2, kernel=3, stride=-1),
                                    cppapi.Layer2(L.Dense, 2)], cppapi.LossType.MSE),
     r"stride must be >= 0"),
    (lambda: cppapi.Trainer(small_cnn(input_shape=(1, 8, 8)), cppapi.OptimiserType.SGD, 0.1).fit(
        np.zeros((4, 63), np.float32), np.zeros(4, np.int32), verbose=0),
     r"63 values per sample but input_shape 1x8x8 holds 64"),
])
def test_bad_cnn_configurations_raise_value_errors_naming_the_layer(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_fashion_mnist_loader_reads_debian_files_and_rejects_bad_ones(tmp_path):
    import gzip
    x, y = cppapi.load_fashion_mnist("t10k", limit=100)
    assert x.shape == (100, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0 and set(np.unique(y)) <= set(range(10))
    with pytest.raises(ValueError, match="cannot open"):
        cppapi.load_fashion_mnist("train", dir=str(tmp_path))
    with pytest.raises(ValueError, match="split must be"):
        cppapi.load_fashion_mnist("valid")
    # A truncated image file: header says 2 images, data holds one.
    head = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28])
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(head + bytes(28 * 28))
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2]))
    with pytest.raises(ValueError, match="truncated"):
        cppapi.load_fashion_mnist("train", dir=str(tmp_path))
    # Bad magic number.
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x01\x02\x08\x03" + head[4:] + bytes(2 * 28 * 28))
    with pytest.raises(ValueError, match="bad magic"):
        cppapi.load_fashion_mnist("train", dir=str(tmp_path))


@pytest.mark.parametrize("act", [A.ReLU, A.Tanh, A.Sigmoid])
def test_seed_api_pools_before_the_activation_with_the_same_result(act):
    # NeuralNetwork2 records Conv2D(act) + MaxPool2D as conv -> max_pool -> act
    # (pooling commutes with a non-decreasing activation; a quarter of the
    # activations). One full-batch SGD step must end where the graph API's
    # conv -> act -> max_pool, from the same weights, ends: same loss, same
    # parameters. The inputs make many windows whose maximum is <= 0 (ReLU's
    # gradient 0) and some exact ties.
    rng = np.random.default_rng(7)
    x = np.round(rng.standard_normal((16, 2 * 8 * 8)), 1).astype(np.float32)
    y = (np.arange(16) % 3).astype(np.int32)
    nn = cppapi.NeuralNetwork2([
        cppapi.Layer2(L.Conv2D, 4, act, kernel=3, padding=1),
        cppapi.Layer2(L.MaxPool2D, kernel=2),
        cppapi.Layer2(L.Flatten),
        cppapi.Layer2(L.Dense, 3)], cppapi.LossType.CROSS_ENTROPY, input_shape=(2, 8, 8))
    tr = cppapi.Trainer(nn, cppapi.OptimiserType.SGD, 0.5)
    tr.fit(x, y, epochs=0, batch_size=16, verbose=0)  # builds: the initial weights
    p0 = nn.parameters()
    h = tr.fit(x, y, epochs=1, batch_size=16, restart=False, verbose=0)

    g = cppapi.Graph()
    w = {k: g.param(v.shape, name=k) for k, v in p0.items()}
    for k, v in p0.items():
        w[k].assign(v)
    f = {A.ReLU: cppapi.relu, A.Tanh: cppapi.tanh, A.Sigmoid: cppapi.sigmoid}[act]
    hid = cppapi.max_pool2d(f(cppapi.conv2d(g.input(x.reshape(16, 2, 8, 8)), w["layers.0.weight"],
                                            w["layers.0.bias"], stride=1, padding=1)), 2)
    logits = cppapi.linear(cppapi.flatten(hid), w["layers.3.weight"], w["layers.3.bias"])
    loss = cppapi.cross_entropy(logits, g.input(y))
    g.backward(loss)
    assert h["train_loss"][-1] == pytest.approx(loss.item(), rel=1e-6)
    after = nn.parameters()
    for k in p0:
        want = p0[k] - np.float32(0.5) * w[k].grad
        np.testing.assert_allclose(after[k], want, rtol=1e-6, atol=1e-7, err_msg=k)
    assert np.abs(w["layers.0.weight"].grad).max() > 0
