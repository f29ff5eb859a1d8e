"""Bad input raises a Python exception naming the argument (and the shapes),
never a crash. Each case: what to call, the exception type, a message pattern."""
import re

import numpy as np
import pytest

import cppapi

Dense, Act = cppapi.LayerType.Dense, cppapi.ActivationType
rng = np.random.default_rng(0)
X = rng.standard_normal((20, 4)).astype(np.float32)
Y = rng.standard_normal((20, 1)).astype(np.float32)
LABELS = rng.integers(0, 3, 20)


def regression():
    nn = cppapi.NeuralNetwork2([cppapi.Layer2(Dense, 5, Act.Sigmoid), cppapi.Layer2(Dense, 1)],
                               cppapi.LossType.MSE)
    return nn, cppapi.Trainer(nn, cppapi.OptimiserType.SGD, 0.01)


def classifier():
    nn = cppapi.NeuralNetwork2([cppapi.Layer2(Dense, 5, Act.Tanh),
                                cppapi.Layer2(Dense, 3, Act.Softmax)],
                               cppapi.LossType.CROSS_ENTROPY)
    return nn, cppapi.Trainer(nn, cppapi.OptimiserType.SGD, 0.01)


def fit(**kw):
    """fit on the regression net with good defaults, overridden by kw."""
    args = dict(X_train=X, Y_train=Y, X_test=X, Y_test=Y, epochs=1, eval_every=1,
                batch_size=8, restart=True, verbose=0)
    args.update(kw)
    return regression()[1].fit(**args)


def fit_ce(**kw):
    args = dict(X_train=X, Y_train=LABELS, X_test=X, Y_test=LABELS, epochs=1, batch_size=8,
                verbose=0)
    args.update(kw)
    return classifier()[1].fit(**args)


def predict(Xp):
    nn, tr = regression()
    tr.fit(X, Y, epochs=1, verbose=0)
    return nn.predict(Xp)


def with_nan(a, value=np.nan, at=(3, 0)):
    a = a.copy()
    a[at] = value
    return a


CASES = {
    # --- shapes -------------------------------------------------------------
    "row counts differ": (lambda: fit(Y_train=Y[:15]), ValueError,
                          r"X_train and Y_train have different row counts.*20x4.*15x1"),
    "test row counts differ": (lambda: fit(Y_test=Y[:5]), ValueError,
                               r"X_test and Y_test.*20x4.*5x1"),
    "X_test features differ from X_train": (lambda: fit(X_test=X[:, :3]), ValueError,
                                            r"X_test has 3 features, X_train has 4"),
    "predict with other feature count": (lambda: predict(X[:, :2]), ValueError,
                                         r"X has 2 features but the network was built for 4"),
    "refit without restart, other feature count": (
        lambda: _refit_other_features(), ValueError,
        r"X_train has 3 features but the network was built for 4.*restart=True"),
    "Y_train wrong width (MSE)": (lambda: fit(Y_train=np.hstack([Y, Y])), ValueError,
                                  r"Y_train has 2 columns but the network outputs 1"),
    "one-hot of wrong width": (lambda: fit_ce(Y_train=np.eye(4, dtype=np.float32)[LABELS]),
                               ValueError, r"Y_train has 4 columns but the network outputs 3"),
    "one-hot Y_test of wrong width": (lambda: fit_ce(Y_test=np.eye(2, dtype=np.float32)[LABELS % 2]),
                                      ValueError, r"Y_test has 2 columns.*outputs 3"),
    "labels of shape (N, 2)": (lambda: fit_ce(Y_train=np.stack([LABELS, LABELS], 1)), ValueError,
                               r"Y_train: integer labels must have shape \(N,\) or \(N, 1\)"),
    "1-D X_train": (lambda: fit(X_train=X[:, 0]), ValueError,
                    r"X_train must be 2-D.*\(20,\).*reshape\(-1, 1\)"),
    "1-D Y_train (MSE)": (lambda: fit(Y_train=Y[:, 0]), ValueError,
                          r"Y_train must be 2-D.*\(20,\)"),
    "1-D X for predict": (lambda: predict(X[0]), ValueError, r"X must be 2-D.*\(4,\)"),
    "3-D X_test": (lambda: fit(X_test=X[None]), ValueError, r"X_test must be 2-D.*\(1, 20, 4\)"),
    "scalar X_train": (lambda: fit(X_train=np.float32(1)), ValueError, r"X_train must be 2-D"),
    # --- empty ----------------------------------------------------------------
    "empty X_train": (lambda: fit(X_train=X[:0], Y_train=Y[:0]), ValueError,
                      r"X_train is empty"),
    "X_train without columns": (lambda: fit(X_train=X[:, :0]), ValueError,
                                r"X_train has no feature columns"),
    "empty X_test": (lambda: fit(X_test=X[:0], Y_test=Y[:0]), ValueError, r"X_test is empty"),
    "empty X for predict": (lambda: predict(X[:0]), ValueError, r"X is empty"),
    # --- values -----------------------------------------------------------------
    "label out of range": (lambda: fit_ce(Y_train=np.where(LABELS == 0, 3, LABELS)), ValueError,
                           r"Y_train: label 3 at row \d+ is out of range for 3 classes"),
    "negative label": (lambda: fit_ce(Y_train=np.where(LABELS == 0, -1, LABELS)), ValueError,
                       r"Y_train: label -1 at row \d+ is out of range"),
    "label out of range in Y_test": (lambda: fit_ce(Y_test=LABELS + 1), ValueError,
                                     r"Y_test: label 3 .*out of range"),
    "huge label": (lambda: fit_ce(Y_train=np.full(20, 2**40)), ValueError,
                   r"Y_train: label 1099511627776 at row 0 is out of range"),
    "NaN in X_train": (lambda: fit(X_train=with_nan(X)), ValueError,
                       r"X_train contains NaN at row 3, column 0"),
    "Inf in X_test": (lambda: fit(X_test=with_nan(X, np.inf, (5, 2))), ValueError,
                      r"X_test contains Inf at row 5, column 2"),
    "NaN in Y_train": (lambda: fit(Y_train=with_nan(Y)), ValueError, r"Y_train contains NaN"),
    "-Inf in Y_test": (lambda: fit(Y_test=with_nan(Y, -np.inf)), ValueError, r"Y_test contains Inf"),
    "NaN in one-hot targets": (lambda: fit_ce(Y_train=with_nan(np.eye(3, dtype=np.float32)[LABELS])),
                               ValueError, r"Y_train contains NaN"),
    "NaN in X for predict": (lambda: predict(with_nan(X)), ValueError, r"X contains NaN at row 3"),
    "NaN in float64 X_train": (lambda: fit(X_train=with_nan(X.astype(np.float64))), ValueError,
                               r"X_train contains NaN"),
    # --- fit settings -------------------------------------------------------------
    "batch_size 0": (lambda: fit(batch_size=0), ValueError, r"batch_size must be > 0, got 0"),
    "negative batch_size": (lambda: fit(batch_size=-4), ValueError, r"batch_size must be > 0, got -4"),
    "float batch_size": (lambda: fit(batch_size=2.5), TypeError, r"batch_size must be an int, got float"),
    "negative epochs": (lambda: fit(epochs=-1), ValueError, r"epochs must be >= 0, got -1"),
    "float epochs": (lambda: fit(epochs=1.5), TypeError, r"epochs must be an int, got float"),
    "eval_every 0": (lambda: fit(eval_every=0), ValueError, r"eval_every must be > 0, got 0"),
    "verbose 3": (lambda: fit(verbose=3), ValueError, r"verbose must be 0, 1 or 2, got 3"),
    "string verbose": (lambda: fit(verbose="2"), TypeError, r"verbose must be an int, got str"),
    "X_test without Y_test": (lambda: fit(Y_test=None), ValueError,
                              r"give both X_test and Y_test"),
    # --- types ------------------------------------------------------------------------
    "integer X_train": (lambda: fit(X_train=X.astype(np.int64)), TypeError,
                        r"X_train has dtype int64.*X_train.astype\(numpy.float32\)"),
    "integer X for predict": (lambda: predict(X.astype(np.int32)), TypeError, r"X has dtype int32"),
    "integer Y_train with MSE": (lambda: fit(Y_train=Y.astype(np.int64)), TypeError,
                                 r"Y_train has integer dtype int64.*loss is MSE"),
    "bool X_train": (lambda: fit(X_train=X > 0), TypeError, r"X_train has dtype bool"),
    "complex X_test": (lambda: fit(X_test=X.astype(np.complex64)), TypeError,
                       r"X_test has dtype complex64"),
    "string X_train": (lambda: fit(X_train=X.astype(str)), TypeError, r"X_train has dtype <U"),
    "object X_train": (lambda: fit(X_train=X.astype(object)), TypeError, r"X_train has dtype object"),
    "ragged list X_train": (lambda: fit(X_train=[[1.0, 2.0], [3.0]]), TypeError,
                            r"X_train is not array-like"),
    "None X_train": (lambda: fit(X_train=None), TypeError, r"X_train is None"),
    "None X for predict": (lambda: predict(None), TypeError, r"X is None"),
    # --- construction -------------------------------------------------------------------
    "predict before fit": (lambda: regression()[0].predict(X), ValueError, r"not trained yet"),
    "layer without units": (lambda: cppapi.Layer2(Dense, 0, Act.ReLU), ValueError,
                            r"units must be > 0, got 0"),
    "network without layers": (lambda: cppapi.NeuralNetwork2([], cppapi.LossType.MSE), ValueError,
                               r"at least one layer"),
    "negative learning rate": (lambda: cppapi.Trainer(regression()[0], cppapi.OptimiserType.SGD, -1.0),
                               ValueError, r"learning rate must be a positive finite number"),
    "momentum of 1": (lambda: cppapi.Trainer(regression()[0], cppapi.OptimiserType.Momentum, 0.1,
                                             momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
    "divergence is reported": (lambda: fit(Y_train=Y * 1e30, X_test=None, Y_test=None),
                               ValueError, r"training loss became (NaN|Inf).*lower the learning rate"),
}


def _refit_other_features():
    nn, tr = regression()
    tr.fit(X, Y, epochs=1, verbose=0)
    tr.fit(X[:, :3], Y, epochs=1, restart=False, verbose=0)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_raises_a_python_exception_naming_it(name):
    call, exc, pattern = CASES[name]
    with pytest.raises(exc) as info:
        call()
    assert info.type is exc, f"{name}: expected {exc.__name__}, got {info.type.__name__}"
    assert re.search(pattern, str(info.value)), f"{name}: message {str(info.value)!r} !~ {pattern!r}"


def test_a_failed_fit_leaves_the_network_unchanged():
    nn, tr = regression()
    tr.fit(X, Y, epochs=2, verbose=0)
    before = nn.predict(X)
    with pytest.raises(ValueError):
        tr.fit(X, with_nan(Y), epochs=2, verbose=0)
    with pytest.raises(ValueError):
        tr.fit(X, Y, X[:, :2], Y, epochs=2, verbose=0)
    np.testing.assert_array_equal(nn.predict(X), before)


def test_inputs_that_are_converted_not_refused():
    # float64, float16, Fortran order, strided views, lists, read-only: converted once.
    nn, tr = regression()
    for Xc in (X.astype(np.float64), X.astype(np.float16), np.asfortranarray(X), X.tolist()):
        tr.fit(Xc, Y, epochs=1, verbose=0)
    labels_ok = (LABELS.astype(np.uint8), LABELS.astype(np.int32).reshape(-1, 1), LABELS.tolist())
    for lab in labels_ok:
        classifier()[1].fit(X, lab, epochs=1, verbose=0)
    ro = X.copy()
    ro.flags.writeable = False
    assert nn.predict(ro).shape == (20, 1)
    assert tr.fit(X, Y, epochs=0, verbose=1)["epoch"] == []  # zero epochs: nothing to do
