"""A training run for tests/python/test_dist.py, started by `mpirun -np N`
(or alone as one rank): an MLP fitted by Trainer.fit on fixed data, or a
small GPT stepped through the graph API with cppapi.dist.GradSync. Rank 0
writes the losses and final parameters to --out (.npz).

    mpirun -np 2 python tests/python/dist_worker.py --model mlp --batch 8 --out r.npz
"""
import argparse

import numpy as np

import cppapi


def mlp(a):
    """Trainer.fit on 35 rows (per rank: batch rows of each 2*batch-row step;
    one process at 2*batch: batches 16, 16, 3, so a short last batch splits
    unevenly over the ranks), a.epochs epochs, a loss per epoch."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(35, 6)).astype(np.float32)
    Y = (X @ rng.normal(size=(6, 2)) + 0.1 * rng.normal(size=(35, 2))).astype(np.float32)
    D, A = cppapi.LayerType.Dense, cppapi.ActivationType
    nn = cppapi.NeuralNetwork2([cppapi.Layer2(D, 16, A.Tanh), cppapi.Layer2(D, 2, A.Linear)],
                               cppapi.LossType.MSE, 7)
    opt = getattr(cppapi.OptimiserType, a.optimiser)
    t = cppapi.Trainer(nn, opt, 0.01)
    h = t.fit(X, Y, epochs=a.epochs, eval_every=1, batch_size=a.batch, verbose=a.verbose)
    return np.array(h["train_loss"]), nn.parameters()


def gpt(a):
    """A 2-layer GPT on windows of a learnable token stream (a repeating
    pattern): every rank draws the same global batch of world * batch windows
    and keeps its slice (dist.shard, TokenWindows.sample_rows), stepped through
    the graph API with GradSync; a.epochs AdamW steps, each step's loss over
    the whole batch."""
    world = cppapi.dist.world_size()
    cfg = cppapi.GPTConfig(vocab_size=17, block_size=8, n_layer=2, n_head=2, n_embd=16)
    m = cppapi.GPT(cfg, seed=3)
    m.configure_optimizer(lr=3e-3, weight_decay=0.1)
    cppapi.dist.broadcast_params(m)
    sync = cppapi.dist.GradSync(m, bucket_mb=0.004)  # several buckets on a small model
    stream = np.array([(i * 5 + i // 17) % 17 for i in range(2000)], dtype=np.int32)
    windows = cppapi.TokenWindows(stream, seed=11)
    first, rows = cppapi.dist.shard(world * a.batch)
    losses = []
    for _ in range(a.epochs):
        x, y = windows.sample_rows(world * a.batch, 8, first, rows)
        loss = m.loss(x, y)
        m.backward()
        sync.finish()
        m.clip_grad_norm(1.0)
        m.step()
        m.zero_grad()
        losses.append(cppapi.dist.allreduce_scalar(loss, "mean"))
    return np.array(losses), m.parameters()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mlp", "gpt"], default="mlp")
    ap.add_argument("--batch", type=int, required=True, help="rows per rank and step")
    ap.add_argument("--epochs", type=int, default=7)
    ap.add_argument("--optimiser", default="Adam")
    ap.add_argument("--verbose", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    cppapi.set_num_threads(1)
    cppapi.dist.init()
    losses, params = (mlp if a.model == "mlp" else gpt)(a)
    if cppapi.dist.rank() == 0:
        np.savez(a.out, losses=losses, world=cppapi.dist.world_size(),
                 **{"p:" + k: v for k, v in params.items()})


if __name__ == "__main__":
    main()
