"""Fashion-MNIST with a small CNN through the seed's API (issue 4).

conv5x5 1->16 pad 2, ReLU, max-pool 2, conv5x5 16->32 pad 2, ReLU, max-pool 2,
dense 1568->128 ReLU, dense 128->10, softmax cross-entropy, Adam lr 1e-3,
batch 64. Data: Debian's dataset-fashion-mnist, read by lldl's C++ idx loader.

    .venv/bin/python examples/fashion_cnn.py [--epochs 4] [--limit N] [--threads T]

Data parallel (issue 15): `mpirun -np N python examples/fashion_cnn.py --threads 1`
runs N ranks; each step takes --batch images in all, batch / N per rank, the
gradients are averaged over the ranks and rank 0 prints (as root on one
machine: mpirun --allow-run-as-root --oversubscribe).
"""
import argparse
import time

import cppapi as c


def build():
    L, A = c.LayerType, c.ActivationType
    return c.NeuralNetwork2([
        c.Layer2(L.Conv2D, 16, A.ReLU, kernel=5, padding=2),
        c.Layer2(L.MaxPool2D, kernel=2),
        c.Layer2(L.Conv2D, 32, A.ReLU, kernel=5, padding=2),
        c.Layer2(L.MaxPool2D, kernel=2),
        c.Layer2(L.Flatten),
        c.Layer2(L.Dense, 128, A.ReLU),
        c.Layer2(L.Dense, 10, A.Linear),
    ], c.LossType.CROSS_ENTROPY, input_shape=(1, 28, 28))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    ap.add_argument("--threads", type=int, default=0, help="threads (default: all cores)")
    ap.add_argument("--verbose", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64, help="images per step over all ranks")
    a = ap.parse_args()
    if a.threads:
        c.set_num_threads(a.threads)
    c.dist.init()  # a job of one rank unless started by mpirun
    world = c.dist.world_size()
    if a.batch % world:
        raise SystemExit(f"--batch {a.batch} does not split over {world} ranks")
    x, y = c.load_fashion_mnist("train", limit=a.limit)
    xt, yt = c.load_fashion_mnist("t10k")
    nn = build()
    trainer = c.Trainer(nn, c.OptimiserType.Adam, 1e-3)
    t0 = time.perf_counter()
    h = trainer.fit(x, y, xt, yt, epochs=a.epochs, eval_every=1, batch_size=a.batch // world,
                    verbose=a.verbose)
    if c.dist.rank() != 0:
        return
    if a.verbose == 1:
        for e, acc, loss in zip(h["epoch"], h["test_accuracy"], h["test_loss"]):
            print(f"epoch {e}: test accuracy {acc:.4f}, test loss {loss:.4f}")
    print(f"test accuracy {h['test_accuracy'][-1]:.4f} after {a.epochs} epochs, "
          f"{time.perf_counter() - t0:.1f} s, {h['samples_per_s'][-1]:.0f} training images/s "
          f"({world} rank(s) x {c.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
