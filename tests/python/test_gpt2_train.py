"""GPT-2 scale training and generation through lldl-gpt and cppapi: exact
resume across processes, gradient accumulation from the command line, the
124M model (one small training step from the command line, a brief forward
and batched sampling from Python), generation at vocab 50257 over all 1024
positions, and top-p / batched generation from Python."""
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file

import cppapi
from conftest import ROOT

EXE = ROOT / "build" / "lldl-gpt"
needs_exe = pytest.mark.skipif(not EXE.exists(), reason=f"{EXE} is not built")

TEXT = "".join(f"the cat sat on the mat {i % 7}\n%\n" for i in range(300))
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block", "16", "--batch", "4",
        "--eval-every", "5", "--eval-batches", "2", "--warmup", "3", "--quiet", "--threads", "2",
        "--grad-accum", "2", "--lr", "3e-3"]


def run(*args, check=True):
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, errors="replace", timeout=600,
                          check=check, stdin=subprocess.DEVNULL)


def same_bits(a_path, b_path):
    a, b = load_file(str(a_path)), load_file(str(b_path))
    assert sorted(a) == sorted(b)
    return [k for k in a if a[k].tobytes() != b[k].tobytes()]


@needs_exe
def test_resume_in_a_new_process_is_bit_identical(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    whole, part, cont = tmp_path / "whole.st", tmp_path / "part.st", tmp_path / "cont.st"
    log_whole, log_split = tmp_path / "whole.log", tmp_path / "split.log"
    run_whole_stdout = [run("train", "--data", str(data), "--steps", "14", "--out", str(whole),
                            "--loss-log", str(log_whole), *TINY).stdout]
    r = run("train", "--data", str(data), "--steps", "14", "--stop-at", "6", "--out", str(part),
            "--loss-log", str(log_split), *TINY)
    assert "trained 6 steps" in r.stdout
    # The second process is given only the checkpoint: the run's settings come from it.
    r = run("train", "--data", str(data), "--resume", str(part), "--out", str(cont), "--loss-log",
            str(log_split), "--quiet", "--threads", "2")
    assert "trained 14 steps" in r.stdout
    # Evaluation settings carry over too: the same validation loss.
    assert r.stdout.split("val loss")[1] .split()[0] == \
        run_whole_stdout[0].split("val loss")[1].split()[0]
    lines = log_whole.read_text().splitlines()
    assert len(lines) == 14
    assert log_split.read_text().splitlines() == lines  # losses and lr to 17 digits
    assert same_bits(whole, cont) == []  # parameters and AdamW moments
    # The training checkpoint holds the moments beside the parameters.
    keys = load_file(str(cont)).keys()
    assert "optim.m.wte.weight" in keys and "optim.v.h.0.mlp.c_fc.weight" in keys
    # And still samples as a model checkpoint.
    s = run("sample", "--ckpt", str(cont), "--prompt", "the ", "--tokens", "10", "--top-p", "0.9",
            "--batch", "3")
    assert s.stdout.count("--- sample") == 3


@needs_exe
def test_resume_refuses_another_run(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    part = tmp_path / "part.st"
    run("train", "--data", str(data), "--steps", "10", "--stop-at", "3", "--out", str(part), *TINY)
    r = run("train", "--data", str(data), "--resume", str(part), "--out", str(tmp_path / "x.st"),
            "--lr", "1e-2", check=False)
    assert r.returncode == 2 and "lr is 0.01" in r.stderr, r.stderr
    other = tmp_path / "other.txt"
    other.write_text(TEXT.replace("cat", "cta"))
    r = run("train", "--data", str(other), "--resume", str(part), "--out", str(tmp_path / "x.st"),
            check=False)
    assert r.returncode == 2 and "training tokens differ" in r.stderr, r.stderr
    r = run("train", "--data", str(data), "--steps", "2", "--out", str(part), "--grad-accum", "0",
            check=False)
    assert r.returncode == 2 and "grad_accum" in r.stderr, r.stderr


@needs_exe
def test_gpt2_124m_trains_a_step(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    ckpt = tmp_path / "m.st"
    r = run("train", "--data", str(data), "--init", "gpt2-124m", "--tokenizer", "byte", "--steps",
            "1", "--batch", "1", "--block", "8", "--eval-batches", "1", "--out", str(ckpt),
            "--quiet")
    assert "gpt: 124439808 parameters" in r.stderr  # GPT-2 small, tied head
    assert "memory: step planned" in r.stdout and "peak RSS" in r.stdout
    keys = load_file(str(ckpt)).keys()
    assert "h.11.mlp.c_proj.weight" in keys and "optim.v.wte.weight" in keys


def test_gpt2_124m_forward_and_batched_generation_at_full_size():
    m = cppapi.GPT(cppapi.GPTConfig(50257, 1024, 12, 12, 768), seed=1)
    assert m.num_parameters() == 124439808
    p = m.parameters()
    # GPT-2's initialisation: N(0, 0.02); residual projections / sqrt(2 n_layer).
    assert abs(p["h.3.attn.c_attn.weight"].std() - 0.02) < 5e-4
    assert abs(p["h.3.mlp.c_proj.weight"].std() - 0.02 / np.sqrt(24)) < 2e-4
    ids = np.random.default_rng(0).integers(0, 50257, size=(1, 8))
    logits = m.forward(ids)
    assert logits.shape == (1, 8, 50257)
    loss = m.loss(ids, np.roll(ids, -1, axis=1))
    assert abs(loss - np.log(50257)) < 0.5
    prompt = np.random.default_rng(1).integers(0, 50257, size=(8, 4))
    out = m.generate(prompt, 3, temperature=0.8, top_k=50, top_p=0.9, seed=3)
    assert out.shape == (8, 7)
    assert (out[:, :4] == prompt).all() and out.max() < 50257
    one = m.generate(prompt[2], 3, temperature=0.8, top_k=50, top_p=0.9, seed=5)
    assert (one == out[2]).all()  # row b samples with seed + b


def test_generation_fills_1024_positions_at_vocab_50257():
    # GPT-2's vocabulary and context on a narrow model (cheap): a prompt that
    # fills the block makes generation rebuild the cache from the last half
    # block and go on.
    m = cppapi.GPT(cppapi.GPTConfig(50257, 1024, 1, 2, 32), seed=2)
    prompt = np.random.default_rng(1).integers(0, 50257, size=(2, 1020))
    out = m.generate(prompt, 8, temperature=0.0)
    assert out.shape == (2, 1028)
    assert (out[:, :1020] == prompt).all()
    # Greedy: the first new token is the arg-max of the full forward pass.
    assert out[0, 1020] == m.forward(prompt[:1, -1024:])[0, -1].argmax()
    assert (m.generate(prompt[1], 8, temperature=0.0) == out[1]).all()


def test_generate_top_p_and_batch_from_python():
    m = cppapi.GPT(cppapi.GPTConfig(13, 8, 2, 2, 16), seed=3)
    x = np.array([[1, 2, 3], [4, 5, 6]])
    a = m.generate(x, 12, temperature=1.0, top_p=0.5, seed=7)
    assert a.shape == (2, 15)
    assert (a == m.generate(x, 12, temperature=1.0, top_p=0.5, seed=7)).all()
    assert (a[1] == m.generate(x[1], 12, temperature=1.0, top_p=0.5, seed=8)).all()
    with pytest.raises(ValueError, match="top_p"):
        m.generate(x, 2, top_p=1.5)
    lstm = cppapi.LSTM(cppapi.LSTMConfig(13))
    with pytest.raises(ValueError, match="top_p"):
        lstm.generate(x, 2, top_p=0.5)
