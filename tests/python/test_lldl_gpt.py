"""The lldl-gpt command line: train then sample, bad arguments, and a training
run killed at arbitrary moments always leaves a loadable checkpoint."""
import os
import random
import signal
import subprocess
import time

import pytest
from safetensors import safe_open

import cppapi
from conftest import ROOT

EXE = ROOT / "build" / "lldl-gpt"
pytestmark = pytest.mark.skipif(not EXE.exists(), reason=f"{EXE} is not built")

TEXT = "".join(f"the cat sat on the mat {i % 7}\n%\n" for i in range(300))
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block", "16", "--batch", "4",
        "--eval-every", "10", "--eval-batches", "2", "--warmup", "5", "--quiet", "--threads", "1"]


def run(*args, check=True):
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=300,
                          check=check, stdin=subprocess.DEVNULL)


def test_train_then_sample(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    ckpt = tmp_path / "m.safetensors"
    r = run("train", "--data", str(data), "--steps", "150", "--out", str(ckpt), "--lr", "3e-3",
            *TINY)
    assert "trained 150 steps" in r.stdout
    val = float(r.stdout.split("val loss ")[1].split()[0])
    assert val < 1.5  # untrained: ln(vocab) ~ 2.9 nats
    with safe_open(str(ckpt), "np") as f:
        meta = f.metadata()
        assert meta["lldl.model"] == "gpt" and meta["tokenizer"] == "char"
        assert "h.0.attn.c_attn.weight" in f.keys()
    s = run("sample", "--ckpt", str(ckpt), "--prompt", "the ", "--tokens", "40", "--seed", "3")
    assert s.stdout.startswith("the ")
    assert len(s.stdout) >= 40
    # Same seed, same text.
    assert run("sample", "--ckpt", str(ckpt), "--prompt", "the ", "--tokens", "40",
               "--seed", "3").stdout == s.stdout


def test_bad_arguments_are_named(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    ckpt = tmp_path / "m.safetensors"
    run("train", "--data", str(data), "--steps", "2", "--out", str(ckpt), *TINY)
    cases = [
        (["train", "--steps", "2", "--out", str(ckpt)], "--data"),
        (["train", "--data", str(tmp_path / "missing.txt"), "--steps", "2", "--out", str(ckpt)],
         "no such file"),
        (["train", "--data", str(data), "--steps", "x", "--out", str(ckpt)], "--steps must be an integer"),
        (["train", "--data", str(data), "--steps", "2", "--out", str(ckpt), "--n-head", "3"],
         "divisible by n_head"),
        (["sample", "--ckpt", str(ckpt), "--prompt", "", "--tokens", "5"], "--prompt is empty"),
        (["sample", "--ckpt", str(ckpt), "--prompt", "Z", "--tokens", "5"], "'Z'"),
        (["sample", "--ckpt", str(ckpt), "--prompt", "the", "--tokens", "5", "--top-k", "0"], "top_k"),
        (["sample", "--ckpt", str(ckpt), "--prompt", "the", "--tokens", "5", "--temperature", "-1"],
         "temperature"),
        (["sample", "--ckpt", str(tmp_path / "none.safetensors"), "--prompt", "the"], "none.safetensors"),
        (["frobnicate"], "unknown command"),
        (["train", "--data", str(data), "--steps", "2", "--out", str(ckpt), "--device", "tpu"],
         "--device must be cpu or cuda"),
        (["train", "--data", str(data), "--steps", "2", "--out", str(ckpt), "--tf32"],
         "needs --device cuda"),
        (["sample", "--ckpt", str(ckpt), "--prompt", "the", "--precision", "fp8", "--device", "cuda"],
         "must be fp32 or bf16"),
    ]
    import cppapi
    if not cppapi.cuda_available():  # the reason, not a crash
        cases.append((["sample", "--ckpt", str(ckpt), "--prompt", "the", "--device", "cuda"],
                      "CUDA is not available"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    cases.append((["train", "--data", str(empty), "--steps", "2", "--out", str(ckpt)], "empty corpus"))
    for args, needle in cases:
        r = run(*args, check=False)
        assert r.returncode == 2, (args, r.stderr)
        assert needle in r.stderr, (args, r.stderr)


def test_killed_training_leaves_the_last_complete_checkpoint(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    ckpt = tmp_path / "m.safetensors"
    rng = random.Random(7)
    loads = 0
    for trial in range(6):
        p = subprocess.Popen([str(EXE), "train", "--data", str(data), "--steps", "100000",
                              "--out", str(ckpt), "--ckpt-every", "1", *TINY],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
        time.sleep(0.3 + rng.random() * 1.2)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if not ckpt.exists():
            continue
        with safe_open(str(ckpt), "np") as f:
            meta = f.metadata()
        cfg = cppapi.GPTConfig(int(meta["vocab_size"]), int(meta["block_size"]),
                               int(meta["n_layer"]), int(meta["n_head"]), int(meta["n_embd"]))
        m = cppapi.GPT(cfg)
        m.load(str(ckpt))
        loads += 1
        leftovers = [f for f in os.listdir(tmp_path) if ".tmp" in f]
        # A killed writer may leave its temporary file; never a half-written checkpoint.
        assert all(not f.endswith(".safetensors") for f in leftovers)
    assert loads >= 3


def test_cuda_graph_flag_gives_the_same_run(tmp_path):
    """On the CPU --cuda-graph runs each step through a StepGraph's eager path:
    the loss log and the checkpoint must be the plain run's, byte for byte."""
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    outs = {}
    for tag, extra in (("plain", []), ("graph", ["--cuda-graph"])):
        ckpt, log = tmp_path / f"{tag}.safetensors", tmp_path / f"{tag}.log"
        run("train", "--data", str(data), "--steps", "20", "--out", str(ckpt), "--lr", "3e-3",
            "--loss-log", str(log), *TINY, *extra)
        outs[tag] = (log.read_text(), ckpt.read_bytes())
    assert len(outs["plain"][0].splitlines()) == 20
    assert outs["graph"] == outs["plain"]
    r = run("train", "--data", str(data), "--steps", "2", "--out", str(tmp_path / "x.safetensors"),
            "--grad-accum", "2", "--cuda-graph", *TINY, check=False)
    assert r.returncode == 2, r.stderr
    assert "cuda_graph (--cuda-graph) needs grad_accum 1" in r.stderr
