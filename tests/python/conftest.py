"""Shared fixtures for the Python tests of cppapi.

The module is found like any other: installed (`pip install .`), through the
.pth file ./dev.sh puts into .venv, or on PYTHONPATH (build/python).
Subprocesses (examples, the notebook kernel) get the same module through
PYTHONPATH, see `module_env`.
"""
import os
from pathlib import Path

import numpy as np
import pytest

import cppapi

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def module_env():
    """Environment for a child Python that must import this very cppapi."""
    env = dict(os.environ)
    here = str(Path(cppapi.__file__).resolve().parent)
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def seed_network(loss=cppapi.LossType.MSE, outputs=1, hidden=16, seed=42):
    """The seed's diabetes network: two sigmoid layers of 16, a linear output."""
    Dense, Act = cppapi.LayerType.Dense, cppapi.ActivationType
    return cppapi.NeuralNetwork2(
        [cppapi.Layer2(Dense, hidden, Act.Sigmoid),
         cppapi.Layer2(Dense, hidden, Act.Sigmoid),
         cppapi.Layer2(Dense, outputs, Act.Linear)],
        loss, seed)


@pytest.fixture(scope="session")
def diabetes():
    """The seed example's split: (X_train, X_test, Y_train, Y_test), float32."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    d = load_diabetes()
    X = StandardScaler().fit_transform(d.data.astype(np.float32))
    Y = d.target.astype(np.float32).reshape(-1, 1)
    parts = train_test_split(X, Y, test_size=0.2, random_state=42)
    for p in parts:
        p.flags.writeable = False  # shared by tests: nobody may change them
    return parts


@pytest.fixture(scope="session")
def digits():
    """sklearn's 8x8 digits scaled to [0, 1]: (X_train, X_test, y_train, y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    parts = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    for p in parts:
        p.flags.writeable = False
    return parts


@pytest.fixture
def small_regression():
    """A small, easy regression problem: y = x @ w + noise (64 x 3 -> 64 x 1)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32)
         + 0.01 * rng.standard_normal((64, 1)).astype(np.float32))
    return X, Y


@pytest.fixture
def trained_net(small_regression):
    """A fitted 3 -> 8 -> 1 network and its trainer."""
    X, Y = small_regression
    Dense, Act = cppapi.LayerType.Dense, cppapi.ActivationType
    nn = cppapi.NeuralNetwork2([cppapi.Layer2(Dense, 8, Act.Tanh),
                                cppapi.Layer2(Dense, 1, Act.Linear)], cppapi.LossType.MSE)
    tr = cppapi.Trainer(nn, cppapi.OptimiserType.Adam, 0.01)
    tr.fit(X, Y, epochs=5, eval_every=5, batch_size=16, verbose=0)
    return nn, tr
