"""The seed's API from Python: NeuralNetwork2, Layer2, Trainer, fit, predict."""
import numpy as np
import pytest

import cppapi
from conftest import seed_network

Dense, Act = cppapi.LayerType.Dense, cppapi.ActivationType


def test_enums_have_the_seeds_names():
    assert {"Sigmoid", "Tanh", "ReLU", "Linear", "Softmax"} <= set(cppapi.ActivationType.__members__)
    assert set(cppapi.LossType.__members__) == {"MSE", "CROSS_ENTROPY"}
    assert set(cppapi.OptimiserType.__members__) == {"SGD", "Momentum", "Adam", "AdamW"}
    assert "Dense" in cppapi.LayerType.__members__


def test_longer_training_beats_the_train_mean_on_the_test_set(diabetes):
    X_train, X_test, Y_train, Y_test = diabetes
    nn = seed_network()
    trainer = cppapi.Trainer(nn, cppapi.OptimiserType.SGD, 0.01)
    hist = trainer.fit(X_train, Y_train, X_test, Y_test, 2000, 500, X_train.shape[0], True, 0)
    mean_mse = float(np.mean((Y_test - Y_train.mean()) ** 2))
    test_mse = float(np.mean((nn.predict(X_test) - Y_test) ** 2))
    assert hist["test_loss"][-1] == pytest.approx(test_mse, rel=1e-4)
    # This net (465 parameters, 353 rows) overfits: the test MSE is lowest near
    # epoch 200 (about 3300) and climbs back to about 4500 by epoch 2000, still
    # below the mean predictor's 5360.
    assert test_mse < mean_mse, f"test MSE {test_mse:.1f} vs mean predictor {mean_mse:.1f}"


def test_history_has_one_record_per_evaluation(diabetes):
    X_train, X_test, Y_train, Y_test = diabetes
    trainer = cppapi.Trainer(seed_network(), cppapi.OptimiserType.SGD, 0.01)
    hist = trainer.fit(X_train, Y_train, X_test, Y_test, 25, 10, 64, True, 0)
    assert hist["epoch"] == [10, 20, 25]  # every eval_every epochs and after the last
    for key in ("train_loss", "test_loss", "elapsed_s", "samples_per_s"):
        assert len(hist[key]) == 3 and all(np.isfinite(hist[key])), key
    assert hist["train_accuracy"] == [None] * 3  # regression: no accuracy


def test_keyword_arguments_match_positional_ones(diabetes):
    X_train, X_test, Y_train, Y_test = diabetes
    a = cppapi.Trainer(seed_network(), cppapi.OptimiserType.SGD, 0.01).fit(
        X_train, Y_train, X_test, Y_test, 20, 10, 32, True, 0)
    b = cppapi.Trainer(nn=seed_network(), optimiser=cppapi.OptimiserType.SGD, lr=0.01).fit(
        X_train=X_train, Y_train=Y_train, X_test=X_test, Y_test=Y_test, epochs=20,
        eval_every=10, batch_size=32, restart=True, verbose=0)
    assert a["train_loss"] == b["train_loss"] and a["test_loss"] == b["test_loss"]


def test_defaults_are_the_seeds(diabetes, capsys):
    # epochs 10, eval_every 10, one full batch, restart, verbose 2.
    X_train, X_test, Y_train, Y_test = diabetes
    hist = cppapi.Trainer(seed_network(), cppapi.OptimiserType.SGD).fit(
        X_train, Y_train, X_test, Y_test)
    full = cppapi.Trainer(seed_network(), cppapi.OptimiserType.SGD, 0.01).fit(
        X_train, Y_train, X_test, Y_test, 10, 10, X_train.shape[0], True, 0)
    assert hist["epoch"] == [10] and hist["test_loss"] == full["test_loss"]
    assert capsys.readouterr().out.count("epoch 10/10") == 1


def test_test_set_is_optional(diabetes):
    X_train, _, Y_train, _ = diabetes
    hist = cppapi.Trainer(seed_network(), cppapi.OptimiserType.Adam, 0.01).fit(
        X_train, Y_train, epochs=3, eval_every=1, verbose=0)
    assert hist["epoch"] == [1, 2, 3]


def test_verbose_levels(diabetes, capsys):
    X_train, X_test, Y_train, Y_test = diabetes
    trainer = cppapi.Trainer(seed_network(), cppapi.OptimiserType.SGD, 0.01)
    trainer.fit(X_train, Y_train, X_test, Y_test, 30, 10, 64, True, 0)
    assert capsys.readouterr().out == ""
    trainer.fit(X_train, Y_train, X_test, Y_test, 30, 10, 64, True, 2)
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[1] for ln in lines] == ["10/30", "20/30", "30/30"]
    assert all("train loss" in ln and "test loss" in ln for ln in lines)
    trainer.fit(X_train, Y_train, X_test, Y_test, 30, 10, 64, True, 1)
    out = capsys.readouterr().out
    assert "epoch 30/30 [" in out and "100%" in out and out.endswith("\n")


def test_batch_size_larger_than_the_data_is_one_batch(diabetes):
    X_train, X_test, Y_train, Y_test = diabetes
    fit = lambda bs: cppapi.Trainer(seed_network(), cppapi.OptimiserType.SGD, 0.01).fit(
        X_train, Y_train, X_test, Y_test, 5, 5, bs, True, 0)
    assert fit(10**9)["test_loss"] == fit(X_train.shape[0])["test_loss"]


def test_training_is_deterministic_and_restart_false_resumes(diabetes):
    X_train, X_test, Y_train, Y_test = diabetes
    trainer = cppapi.Trainer(seed_network(), cppapi.OptimiserType.Momentum, 0.001)
    a = trainer.fit(X_train, Y_train, X_test, Y_test, 6, 3, 50, True, 0)
    b = trainer.fit(X_train, Y_train, X_test, Y_test, 6, 3, 50, True, 0)
    assert (a["train_loss"], a["test_loss"]) == (b["train_loss"], b["test_loss"])
    # restart=False keeps parameters, optimiser state and the shuffle position:
    # 6 + 6 epochs are exactly 12 in one go.
    c = trainer.fit(X_train, Y_train, X_test, Y_test, 6, 3, 50, False, 0)
    assert c["epoch"] == [9, 12]
    once = cppapi.Trainer(seed_network(), cppapi.OptimiserType.Momentum, 0.001).fit(
        X_train, Y_train, X_test, Y_test, 12, 3, 50, True, 0)
    assert once["test_loss"][2:] == c["test_loss"]


@pytest.mark.parametrize("opt", list(cppapi.OptimiserType.__members__.values()))
def test_every_optimiser_reduces_the_loss(opt, small_regression):
    X, Y = small_regression
    nn = cppapi.NeuralNetwork2([cppapi.Layer2(Dense, 8, Act.Tanh), cppapi.Layer2(Dense, 1)],
                               cppapi.LossType.MSE)
    hist = cppapi.Trainer(nn, opt, 0.01).fit(X, Y, X, Y, 40, 1, 16, True, 0)
    assert hist["test_loss"][-1] < 0.5 * hist["test_loss"][0]


def test_predict_shape_dtype_and_input_untouched(trained_net, small_regression):
    nn, _ = trained_net
    X, _ = small_regression
    before = X.copy()
    out = nn.predict(X)
    assert out.shape == (64, 1) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(X, before)
    assert nn.predict(X[:1]).shape == (1, 1)


def test_predict_is_the_same_for_copies_and_converted_layouts(trained_net, small_regression):
    nn, _ = trained_net
    X, _ = small_regression
    ref = nn.predict(X)
    wide = np.zeros((64, 6), np.float32)
    wide[:, ::2] = X
    variants = {
        "copy": X.copy(),
        "fortran order": np.asfortranarray(X),
        "float64": X.astype(np.float64),
        "strided view": wide[:, ::2],
        "read-only": np.frombuffer(X.tobytes(), np.float32).reshape(64, 3),
        "list": X.tolist(),
    }
    for name, v in variants.items():
        np.testing.assert_array_equal(nn.predict(v), ref, err_msg=name)


def test_predict_in_chunks_matches_row_by_row(trained_net):
    nn, _ = trained_net
    X = np.random.default_rng(1).standard_normal((2500, 3)).astype(np.float32)
    out = nn.predict(X)  # more rows than one evaluation chunk
    rows = np.concatenate([nn.predict(X[i:i + 1]) for i in (0, 1023, 1024, 2048, 2499)])
    np.testing.assert_allclose(out[[0, 1023, 1024, 2048, 2499]], rows, rtol=1e-6, atol=1e-6)


def test_labels_and_one_hot_targets_train_alike(digits):
    X_train, X_test, y_train, y_test = digits

    def fit(Y, Yt):
        nn = cppapi.NeuralNetwork2([cppapi.Layer2(Dense, 32, Act.Tanh),
                                    cppapi.Layer2(Dense, 10, Act.Softmax)],
                                   cppapi.LossType.CROSS_ENTROPY)
        return cppapi.Trainer(nn, cppapi.OptimiserType.Adam, 0.01).fit(
            X_train, Y, X_test, Yt, 3, 1, 64, True, 0)

    eye = np.eye(10, dtype=np.float32)
    a = fit(y_train, y_test)
    b = fit(eye[y_train], eye[y_test])
    c = fit(y_train.astype(np.int32).reshape(-1, 1), y_test.astype(np.uint8))
    np.testing.assert_allclose(a["test_loss"], b["test_loss"], rtol=1e-5)
    assert a["test_accuracy"] == b["test_accuracy"] == c["test_accuracy"]
    assert a["test_accuracy"][-1] > 0.8


def test_softmax_output_predicts_probabilities(digits):
    X_train, X_test, y_train, _ = digits
    nn = cppapi.NeuralNetwork2([cppapi.Layer2(Dense, 10, Act.Softmax)],
                               cppapi.LossType.CROSS_ENTROPY)
    cppapi.Trainer(nn, cppapi.OptimiserType.Adam, 0.01).fit(
        X_train, y_train, epochs=2, batch_size=128, verbose=0)
    p = nn.predict(X_test)
    assert p.shape == (len(X_test), 10) and (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_network_description_and_parameters(trained_net):
    nn, trainer = trained_net
    assert [layer.units for layer in nn.layers] == [8, 1]
    assert nn.input_features == 3 and nn.output_features == 1
    assert nn.num_parameters == 3 * 8 + 8 + 8 * 1 + 1
    params = nn.parameters()
    assert params["layers.0.weight"].shape == (3, 8) and params["layers.1.bias"].shape == (1,)
    assert "Tanh" in repr(nn.layers[0])
    loss, acc = trainer.evaluate(np.zeros((4, 3), np.float32), np.zeros((4, 1), np.float32))
    assert np.isfinite(loss) and acc is None


def test_layer_defaults_and_keywords():
    layer = cppapi.Layer2(type=Dense, units=4)
    assert layer.activation == Act.Linear and layer.units == 4
    nn = cppapi.NeuralNetwork2(layers=[layer], loss=cppapi.LossType.MSE, seed=7)
    assert not nn.input_features  # built by the first fit


def test_a_second_thread_gets_an_error_not_a_data_race(trained_net, small_regression, monkeypatch):
    # fit releases the GIL; its progress output (sys.stdout.write) is where we
    # hold it mid-training while another thread tries to use the network.
    import sys
    import threading

    nn, trainer = trained_net
    X, Y = small_regression
    inside, release = threading.Event(), threading.Event()

    class HoldingStdout:
        def write(self, s):
            inside.set()
            release.wait(10)

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", HoldingStdout())
    worker = threading.Thread(target=lambda: trainer.fit(X, Y, epochs=2, eval_every=1, verbose=2))
    worker.start()
    try:
        assert inside.wait(10)
        for name, call in [("predict", lambda: nn.predict(X)), ("parameters", nn.parameters),
                           ("fit", lambda: trainer.fit(X, Y, epochs=1, verbose=0)),
                           ("evaluate", lambda: trainer.evaluate(X, Y))]:
            with pytest.raises(ValueError, match=f"{name}: the network is in use"):
                call()
    finally:
        release.set()
        worker.join()
    assert nn.predict(X).shape == (64, 1)  # usable again afterwards


def test_ctrl_c_stops_fit_cleanly():
    import signal
    import subprocess
    import sys
    import time

    from conftest import module_env

    code = """
import numpy as np, cppapi
X = np.random.rand(2000, 64).astype(np.float32); Y = np.random.rand(2000, 1).astype(np.float32)
nn = cppapi.NeuralNetwork2([cppapi.Layer2(cppapi.LayerType.Dense, 64, cppapi.ActivationType.Tanh),
                            cppapi.Layer2(cppapi.LayerType.Dense, 1)], cppapi.LossType.MSE)
t = cppapi.Trainer(nn, cppapi.OptimiserType.SGD, 0.001)
print("training", flush=True)
try:
    t.fit(X, Y, epochs=10**6, batch_size=32, verbose=0)
except KeyboardInterrupt:
    print("interrupted", flush=True)
print(nn.predict(X[:2]).shape, t.fit(X, Y, epochs=1, verbose=0)["epoch"], flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], env=module_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()
        assert line == "training\n", line + proc.stderr.read()
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out == "interrupted\n(2, 1) [1]\n"
