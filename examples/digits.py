"""Classifies sklearn's 8x8 handwritten digits with the seed's API.

A 64 -> 89 (tanh) -> 10 network trained with cross-entropy and plain SGD in
mini-batches; prints the test accuracy and the training time.

    python examples/digits.py [--epochs 20] [--lr 0.1] [--batch-size 32] [--verbose 2]
"""
import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import cppapi


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    args = p.parse_args()

    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data.astype(np.float32), digits.target, test_size=0.2, random_state=42,
        stratify=digits.target)
    # Pixels are 0..16; standardise with the training set's statistics only.
    scaler = StandardScaler().fit(X_train)
    X_train = scaler.transform(X_train).astype(np.float32)
    X_test = scaler.transform(X_test).astype(np.float32)

    # The final Softmax is fused into the cross-entropy loss during training;
    # predict() returns class probabilities. Integer labels need no one-hot.
    nn = cppapi.NeuralNetwork2([
            cppapi.Layer2(cppapi.LayerType.Dense, 89, cppapi.ActivationType.Tanh),
            cppapi.Layer2(cppapi.LayerType.Dense, 10, cppapi.ActivationType.Softmax)
        ],
        cppapi.LossType.CROSS_ENTROPY)
    trainer = cppapi.Trainer(nn, cppapi.OptimiserType.SGD, args.lr)

    start = time.perf_counter()
    history = trainer.fit(X_train, y_train, X_test, y_test, epochs=args.epochs,
                          eval_every=args.eval_every, batch_size=args.batch_size,
                          restart=True, verbose=args.verbose)
    seconds = time.perf_counter() - start

    accuracy = float(np.mean(nn.predict(X_test).argmax(axis=1) == y_test))
    print(f"digits: {X_train.shape[0]} train / {X_test.shape[0]} test images, "
          f"{nn.num_parameters} parameters")
    print(f"test accuracy {accuracy:.4f} (train {history['train_accuracy'][-1]:.4f}) "
          f"after {args.epochs} epochs; training took {seconds:.2f} s")


if __name__ == "__main__":
    main()
