"""Fashion-MNIST CNN: lldl against PyTorch, training and inference.

The network of issue 4 (conv5x5 1->16 pad 2, ReLU, max-pool 2, conv5x5 16->32
pad 2, ReLU, max-pool 2, dense 1568->128 ReLU, dense 128->10, softmax
cross-entropy, Adam lr 1e-3, batch 64). lldl trains it with Trainer.fit and
infers with predict; PyTorch runs it channels_last with each max-pool before an
in-place ReLU and fused Adam (eager, and under torch.compile with the compile
time reported apart), and infers under inference_mode in batches of 1,024.
Method as in bench/harness.py: a process per measurement with the thread
variables set before import, the order alternated between repeats, median and
min-max of the repeats.

    .venv/bin/python bench/cnn_vs_torch.py [--images 6400] [--threads 1,2] [--repeats 5]
                                           [--no-compile] [--json FILE]
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import vs_pytorch as vp  # noqa: E402  (numpy only at import)

VARIANTS = [("lldl-train", "lldl", "Trainer.fit, Adam"),
            ("torch-train", "torch", "eager, channels_last, pool->ReLU_, fused Adam"),
            ("torch-compile-train", "torch", "torch.compile(model+loss), fused Adam"),
            ("lldl-infer", "lldl", "NeuralNetwork2.predict"),
            ("torch-infer", "torch", "eager, channels_last, inference_mode, batch 1024")]
PAIRS = [("lldl-train", "torch-train"), ("lldl-train", "torch-compile-train"),
         ("lldl-infer", "torch-infer")]


def lldl_infer(n):
    import cppapi as c
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    import fashion_cnn
    x, y = vp.fashion_data(n)
    nn = fashion_cnn.build()
    c.Trainer(nn, c.OptimiserType.Adam, 1e-3).fit(x[:64], y[:64], epochs=1, batch_size=64,
                                                   verbose=0)  # builds the network
    nn.predict(x[:1024])  # warm up
    t0 = time.perf_counter()
    nn.predict(x)
    return {"rate": n / (time.perf_counter() - t0)}


def torch_infer(n):
    import torch
    import torch_models
    x, _ = vp.fashion_data(n)
    x = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
    model = torch_models.cnn_model().eval()
    with torch.inference_mode():
        model(x[:1024])  # warm up
        t0 = time.perf_counter()
        for i in range(0, n, 1024):
            model(x[i:i + 1024])
        return {"rate": n / (time.perf_counter() - t0)}


def measure(variant, n):
    t = int(os.environ["OMP_NUM_THREADS"])
    if variant.startswith("lldl"):
        import cppapi
        cppapi.set_num_threads(t)
        return vp.lldl_cnn(n) if variant == "lldl-train" else lldl_infer(n)
    import torch
    torch.set_num_threads(t)
    if variant == "torch-infer":
        return torch_infer(n)
    return vp.torch_cnn(n, compile_it=variant == "torch-compile-train")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=6400)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        harness.child_main(lambda: measure(a.child[0], int(a.child[1])))
        return
    if a.images < 64 or a.images % 64:
        sys.exit(f"cnn_vs_torch: --images must be a positive multiple of 64, got {a.images}")
    threads = [int(t) for t in a.threads.split(",") if t]
    if not threads or min(threads) < 1 or a.repeats < 1:
        sys.exit("cnn_vs_torch: thread counts and --repeats must be >= 1")
    names = [v for v, _, _ in VARIANTS if not (a.no_compile and "compile" in v)]
    runs, repeat_s = harness.run_matrix(
        names, threads, a.repeats,
        lambda v, t: [os.path.abspath(__file__), "--child", v, str(a.images)],
        log=lambda s: print(s, flush=True))
    cells = {k: harness.summarise(r) for k, r in runs.items()}
    print(f"\nFashion-MNIST CNN, batch 64, {a.images} images, torch {harness.torch_version()}, "
          f"{a.repeats} repeats: images/s median [min-max]")
    for v, _, what in VARIANTS:
        if v in names:
            comp = [x for t in threads for x in cells[(v, t)].get("compile_s", [])]
            print(f"  {v:20} " + " ".join(f"{t} thr {harness.fmt_cell(cells[(v, t)])}" for t in threads) +
                  f"  {what}" + (f"; compile {min(comp):.0f}-{max(comp):.0f} s" if comp else ""))
    rows = [harness.ratios(cells, l, tv, threads) for l, tv in PAIRS if tv in names]
    for r in rows:
        print(f"  {r['lldl']} / {r['torch']}: " +
              ", ".join(f"{t} thr {harness.fmt_ratio(r['by_threads'][str(t)])}" for t in threads) +
              f", best vs best {harness.fmt_ratio(r['best_vs_best'])}")
    if a.json:
        doc = {"schema": harness.SCHEMA, "benchmark": "cnn_vs_torch", "torch": harness.torch_version(),
               "lldl_commit": harness.git_commit(), "threads": threads, "repeats": a.repeats,
               "images": a.images, "repeat_wall_s": repeat_s, "machine_end": harness.machine(),
               "cells": [dict(workload="cnn", variant=v, framework=fw, measures=what,
                              unit="images/s", threads=t, **cells[(v, t)])
                         for v, fw, what in VARIANTS if v in names for t in threads],
               "ratios": [dict(r, workload="cnn") for r in rows]}
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
