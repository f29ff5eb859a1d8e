"""lldl's GPT against Hugging Face transformers' GPT-2, through the directories
transformers writes (config.json + model.safetensors).

Weights come from `transformers.GPT2LMHeadModel(GPT2Config(...))`, randomly
initialised and then perturbed (so that LayerNorm gains and biases are not
their trivial 1 and 0); nothing is downloaded. Agreement is measured per
tensor as ||lldl - hf|| / ||hf|| (float32 both sides, dropout off) and must be
within 1e-4 for the logits, the loss and every parameter gradient at a small
config with the real 50,257-token vocabulary, and for the logits and loss of
the 124M config. Round trips go both ways; every bad directory is an error
naming the key.
"""
import json
import logging
import subprocess

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import cppapi
from conftest import ROOT

TOL = 1e-4
F = torch.nn.functional

SMALL = dict(n_layer=2, n_head=4, n_embd=64, n_positions=64, vocab_size=50257,
             layer_norm_epsilon=1e-4)  # an epsilon that matters: it must be honoured


def rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def hf_model(seed=0, cls=transformers.GPT2LMHeadModel, perturb=True, **cfg):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(**cfg, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    m = cls(config).eval()
    if perturb:
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return m


def tokens(B, T, V, seed):
    g = np.random.default_rng(seed)
    return g.integers(0, V, (B, T)).astype(np.int64)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small HF GPT-2 with the 50,257 vocabulary, saved as transformers saves."""
    d = tmp_path_factory.mktemp("hf_small")
    m = hf_model(**SMALL)
    m.save_pretrained(d)
    return m, d


def state(m):
    """The model's tensors by lldl's names (no 'transformer.' prefix, no lm_head)."""
    return {k.removeprefix("transformer."): v.detach().numpy()
            for k, v in m.state_dict().items() if k != "lm_head.weight"}


@pytest.fixture
def hf_warnings(caplog):
    """Warnings transformers logs (it does not propagate to the root logger by default)."""
    transformers.logging.enable_propagation()
    caplog.set_level(logging.WARNING, logger="transformers")
    yield caplog
    transformers.logging.disable_propagation()


# ---- numerics -------------------------------------------------------------------

def test_logits_loss_and_every_gradient_match_transformers(small):
    m, d = small
    gpt = cppapi.GPT.from_pretrained(str(d))
    assert gpt.config.vocab_size == 50257 and gpt.config.layer_norm_epsilon == 1e-4
    x, y = tokens(2, 24, 50257, 1), tokens(2, 24, 50257, 2)

    out = m(torch.from_numpy(x)).logits
    loss = F.cross_entropy(out.reshape(-1, 50257), torch.from_numpy(y).reshape(-1))
    m.zero_grad()
    loss.backward()

    logits = gpt.forward(x)
    assert logits.shape == (2, 24, 50257)  # exactly the vocabulary, no padding
    e_logits = rel(logits, out.detach().numpy())
    assert e_logits < TOL
    lloss = gpt.loss(x, y)
    e_loss = abs(lloss - loss.item()) / loss.item()
    assert e_loss < TOL
    gpt.backward()
    grads = gpt.grads()
    hf_grads = {k.removeprefix("transformer."): p.grad.numpy() for k, p in m.named_parameters()}
    assert set(grads) == set(hf_grads)  # every parameter, lm_head being wte
    errs = {k: rel(grads[k], hf_grads[k]) for k in grads}
    worst = max(errs, key=errs.get)
    print(f"\nsmall: logits {e_logits:.1e}, loss {e_loss:.1e}, worst of {len(errs)} gradients "
          f"{errs[worst]:.1e} ({worst})")
    assert errs[worst] < TOL, f"gradient of {worst}: relative error {errs[worst]:.2e}"
    # The KV-cache path honours the epsilon too.
    seq = x[0, :16]
    assert rel(gpt.cached_logits(seq), gpt.forward(seq[None])[0]) < TOL


def test_124m_forward_and_loss_match_transformers(tmp_path):
    # GPT2Config(): 12 layers, 12 heads, 768, 1024 positions, 50257 tokens. Left
    # as transformers initialises it (the small test perturbs the LayerNorms).
    m = hf_model(seed=3, perturb=False)
    m.save_pretrained(tmp_path)
    gpt = cppapi.GPT.from_pretrained(str(tmp_path))
    c = gpt.config
    assert (c.n_layer, c.n_head, c.n_embd, c.block_size, c.vocab_size) == (12, 12, 768, 1024, 50257)
    assert gpt.num_parameters() == sum(p.numel() for p in m.parameters())
    x, y = tokens(1, 16, 50257, 4), tokens(1, 16, 50257, 5)
    with torch.no_grad():
        out = m(torch.from_numpy(x)).logits
        loss = F.cross_entropy(out.reshape(-1, 50257), torch.from_numpy(y).reshape(-1)).item()
    e_logits, e_loss = rel(gpt.forward(x), out.numpy()), abs(gpt.loss(x, y) - loss) / loss
    print(f"\n124M: logits {e_logits:.1e}, loss {e_loss:.1e}")
    assert e_logits < TOL
    assert e_loss < TOL


# ---- round trips ----------------------------------------------------------------

def test_hf_to_lldl_to_hf(small, tmp_path, hf_warnings):
    m, d = small
    cppapi.GPT.from_pretrained(str(d)).save_pretrained(str(tmp_path))
    back, info = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, output_loading_info=True)
    assert all(not v for v in info.values()), info
    assert not [r for r in hf_warnings.records if r.levelno >= logging.WARNING], hf_warnings.text
    assert back.lm_head.weight.data_ptr() == back.transformer.wte.weight.data_ptr()  # still tied
    a, b = m.state_dict(), back.state_dict()
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert back.config.layer_norm_epsilon == 1e-4 and back.config.activation_function == "gelu_new"


def test_lldl_to_hf_to_lldl(tmp_path, hf_warnings):
    cfg = cppapi.GPTConfig(vocab_size=101, block_size=32, n_layer=2, n_head=2, n_embd=32)
    gpt = cppapi.GPT(cfg, seed=9)
    gpt.save_pretrained(tmp_path / "a")  # a str or any os.PathLike
    hf, info = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "a", output_loading_info=True)
    assert all(not v for v in info.values()), info
    assert not [r for r in hf_warnings.records if r.levelno >= logging.WARNING], hf_warnings.text
    x = tokens(2, 32, 101, 6)
    with torch.no_grad():
        assert rel(gpt.forward(x), hf.eval()(torch.from_numpy(x)).logits.numpy()) < TOL
    hf.save_pretrained(tmp_path / "b")
    again = cppapi.GPT.from_pretrained(tmp_path / "b")
    p, q = gpt.parameters(), again.parameters()
    assert set(p) == set(q)
    for k in p:
        assert np.array_equal(p[k], q[k]), k


def test_gpt2model_keys_lm_head_twice_and_mask_buffers_load(small, tmp_path):
    m, d = small
    want = cppapi.GPT.from_pretrained(str(d)).forward(tokens(1, 8, 50257, 7))
    # GPT2Model's bare keys.
    base = hf_model(cls=transformers.GPT2Model, **SMALL)
    base.save_pretrained(tmp_path / "base")
    got = cppapi.GPT.from_pretrained(str(tmp_path / "base")).parameters()
    for k, v in state(base).items():
        assert np.array_equal(got[k], v), k
    # lm_head stored beside wte, and the mask buffers older transformers saved.
    t = load_file(d / "model.safetensors")
    t["lm_head.weight"] = t["transformer.wte.weight"].clone()
    t["transformer.h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 64, 64))
    t["transformer.h.1.attn.masked_bias"] = torch.tensor(-1e4)
    (tmp_path / "twice").mkdir()
    save_file(t, tmp_path / "twice" / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "twice" / "config.json").write_text((d / "config.json").read_text())
    assert np.array_equal(cppapi.GPT.from_pretrained(str(tmp_path / "twice")).forward(
        tokens(1, 8, 50257, 7)), want)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_files_load_widened_exactly(small, tmp_path, dtype):
    m, _ = small
    h = hf_model(**SMALL).to(dtype)
    h.save_pretrained(tmp_path)
    assert {v.dtype for v in load_file(tmp_path / "model.safetensors").values()} == {dtype}
    got = cppapi.GPT.from_pretrained(str(tmp_path)).parameters()
    for k, v in h.state_dict().items():
        if k != "lm_head.weight":
            assert np.array_equal(got[k.removeprefix("transformer.")], v.float().numpy()), k


def test_every_half_bit_pattern_widens_as_numpy_and_torch_do(tmp_path):
    # wte of a 1024 x 64 model holds each of the 65,536 F16 (then BF16) bit
    # patterns once: subnormals, infinities and NaN payloads included.
    bits = np.arange(65536, dtype=np.uint16)
    cfg = dict(n_layer=1, n_head=1, n_embd=64, n_positions=4, vocab_size=1024)
    for name, dtype, want in [
            ("f16", torch.float16, bits.view(np.float16).astype(np.float32)),
            ("bf16", torch.bfloat16, (bits.astype(np.uint32) << 16).view(np.float32))]:
        h = hf_model(**cfg).to(dtype)
        sd = {k: v for k, v in h.state_dict().items() if k != "lm_head.weight"}
        sd["transformer.wte.weight"] = torch.from_numpy(bits.view(np.int16).reshape(1024, 64)).view(dtype)
        (tmp_path / name).mkdir()
        save_file(sd, tmp_path / name / "model.safetensors", metadata={"format": "pt"})
        h.config.save_pretrained(tmp_path / name)
        got = cppapi.GPT.from_pretrained(str(tmp_path / name)).parameters()["wte.weight"]
        assert np.array_equal(got.reshape(-1).view(np.uint32), want.view(np.uint32)), name
        ref = sd["transformer.wte.weight"].float().numpy().reshape(-1)
        finite = np.isfinite(ref)
        assert np.array_equal(got.reshape(-1)[finite], ref[finite])


# ---- bad directories ---------------------------------------------------------

def copy_dir(src, dst, edit_tensors=None, edit_config=None):
    dst.mkdir()
    t = load_file(src / "model.safetensors")
    if edit_tensors:
        edit_tensors(t)
    save_file(t, dst / "model.safetensors", metadata={"format": "pt"})
    cfg = json.loads((src / "config.json").read_text())
    if edit_config:
        edit_config(cfg)
    (dst / "config.json").write_text(json.dumps(cfg))
    return str(dst)


def test_missing_tensor_names_the_key(small, tmp_path):
    d = copy_dir(small[1], tmp_path / "x", lambda t: t.pop("transformer.h.1.ln_2.bias"))
    with pytest.raises(ValueError, match=r"missing tensor 'transformer\.h\.1\.ln_2\.bias'"):
        cppapi.GPT.from_pretrained(d)


def test_extra_tensor_names_the_key(small, tmp_path):
    def add(t):
        t["transformer.h.0.attn.q_proj.weight"] = torch.zeros(64, 64)
    d = copy_dir(small[1], tmp_path / "x", add)
    with pytest.raises(ValueError, match=r"unexpected tensor 'transformer\.h\.0\.attn\.q_proj\.weight'"):
        cppapi.GPT.from_pretrained(d)


def test_wrong_shape_names_the_key(small, tmp_path):
    def transpose(t):  # an nn.Linear layout where Conv1D's (in, out) belongs
        t["transformer.h.0.mlp.c_fc.weight"] = t["transformer.h.0.mlp.c_fc.weight"].T.contiguous()
    d = copy_dir(small[1], tmp_path / "x", transpose)
    with pytest.raises(ValueError, match=r"'transformer\.h\.0\.mlp\.c_fc\.weight' has shape \[256, 64\] "
                                         r"but config\.json .* implies \[64, 256\]"):
        cppapi.GPT.from_pretrained(d)


def test_truncated_file(small, tmp_path):
    d = copy_dir(small[1], tmp_path / "x")
    f = tmp_path / "x" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"model\.safetensors.*file truncated\?"):
        cppapi.GPT.from_pretrained(d)


@pytest.mark.parametrize("field,value,message", [
    ("n_layer", 3, r"missing tensor 'transformer\.h\.2\.ln_1\.weight' \(config\.json says n_layer 3\)"),
    ("n_layer", 1, r"unexpected tensor 'transformer\.h\.1\.ln_1\.weight' \(config\.json says n_layer 1\)"),
    ("n_embd", 128, r"'transformer\.wte\.weight' has shape \[50257, 64\] but config\.json"),
    ("n_positions", 128, r"'transformer\.wpe\.weight' has shape \[64, 64\] .* implies \[128, 64\]"),
    ("vocab_size", 50000, r"'transformer\.wte\.weight' has shape \[50257, 64\]"),
    ("n_head", 3, r"n_embd \(64\) must be divisible by n_head \(3\)"),
    ("activation_function", "relu", r"activation_function 'relu' is not supported"),
    ("activation_function", "gelu", r"activation_function 'gelu' is not supported"),
    ("tie_word_embeddings", False, r"tie_word_embeddings is false"),
    ("n_inner", 100, r"n_inner 100 is not supported"),
    ("layer_norm_epsilon", "1e-5", r"'layer_norm_epsilon' must be a number"),
    ("model_type", "llama", r"model_type is 'llama'"),
])
def test_lying_or_unsupported_config(small, tmp_path, field, value, message):
    d = copy_dir(small[1], tmp_path / "x", edit_config=lambda c: c.__setitem__(field, value))
    with pytest.raises(ValueError, match=message):
        cppapi.GPT.from_pretrained(d)


def test_lm_head_that_is_not_wte_is_refused(small, tmp_path):
    def untie(t):
        t["lm_head.weight"] = t["transformer.wte.weight"] * 2
    d = copy_dir(small[1], tmp_path / "x", untie)
    with pytest.raises(ValueError, match=r"'lm_head\.weight' differs from 'transformer\.wte\.weight'"):
        cppapi.GPT.from_pretrained(d)


def test_other_dtypes_and_missing_files(small, tmp_path):
    def to_f64(t):
        t["transformer.ln_f.bias"] = t["transformer.ln_f.bias"].double()
    d = copy_dir(small[1], tmp_path / "x", to_f64)
    with pytest.raises(ValueError, match=r"'transformer\.ln_f\.bias' is F64"):
        cppapi.GPT.from_pretrained(d)
    (tmp_path / "x" / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="has no model.safetensors"):
        cppapi.GPT.from_pretrained(d)
    with pytest.raises(ValueError, match="is not a directory"):
        cppapi.GPT.from_pretrained(str(tmp_path / "absent"))


# ---- lldl-gpt ---------------------------------------------------------------

EXE = ROOT / "build" / "lldl-gpt"


@pytest.mark.skipif(not EXE.exists(), reason=f"{EXE} is not built")
def test_cli_train_from_hf_dir_then_export(tmp_path):
    # A byte-level model (vocab 256) in transformers' format, trained by lldl-gpt.
    m = hf_model(n_layer=1, n_head=2, n_embd=32, n_positions=32, vocab_size=256)
    m.save_pretrained(tmp_path / "hf")
    data = tmp_path / "corpus.txt"
    data.write_text("".join(f"the cat sat on the mat {i % 7}\n%\n" for i in range(200)))
    ckpt = tmp_path / "m.safetensors"
    run = lambda *a: subprocess.run([str(EXE), *a], capture_output=True, text=True, errors="replace",
                                  timeout=300)  # noqa: E731
    r = run("train", "--from", str(tmp_path / "hf"), "--tokenizer", "byte", "--data", str(data),
            "--steps", "5", "--batch", "2", "--eval-every", "0", "--eval-batches", "1",
            "--warmup", "1", "--quiet", "--threads", "1", "--out", str(ckpt))
    assert r.returncode == 0, r.stderr
    assert "block" not in r.stderr
    r = run("export", "--ckpt", str(ckpt), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    trained = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "out")
    lldl = cppapi.GPT.from_pretrained(str(tmp_path / "out"))
    x = tokens(1, 32, 256, 8)  # the default block is the model's 32 positions
    with torch.no_grad():
        assert rel(lldl.forward(x), trained(torch.from_numpy(x)).logits.numpy()) < TOL
    # Five AdamW steps moved the weights away from the starting directory's.
    assert not torch.equal(trained.transformer.h[0].mlp.c_fc.weight, m.transformer.h[0].mlp.c_fc.weight)
    # Sizes come from the directory; a conflicting flag is an error.
    r = run("train", "--from", str(tmp_path / "hf"), "--n-layer", "2", "--tokenizer", "byte",
            "--data", str(data), "--steps", "1", "--out", str(ckpt))
    assert r.returncode == 2 and "--n-layer conflicts with --from" in r.stderr
    r = run("train", "--from", str(tmp_path / "hf"), "--block", "64", "--tokenizer", "byte",
            "--data", str(data), "--steps", "1", "--out", str(ckpt))
    assert r.returncode == 2 and "--block 64 exceeds the model's n_positions 32" in r.stderr
    r = run("sample", "--ckpt", str(ckpt), "--prompt", "the ", "--tokens", "5")
    assert r.returncode == 0 and r.stdout.startswith("the "), r.stderr
    # A model with more ids than its tokenizer samples only the tokenizer's ids.
    big = hf_model(n_layer=1, n_head=2, n_embd=32, n_positions=32, vocab_size=300)
    big.save_pretrained(tmp_path / "big")
    r = run("train", "--from", str(tmp_path / "big"), "--tokenizer", "byte", "--data", str(data),
            "--steps", "1", "--batch", "2", "--eval-every", "0", "--eval-batches", "1", "--quiet",
            "--out", str(tmp_path / "big.safetensors"))
    assert r.returncode == 0, r.stderr
    r = run("sample", "--ckpt", str(tmp_path / "big.safetensors"), "--prompt", "the ", "--tokens", "20")
    assert r.returncode == 0 and r.stdout.startswith("the "), r.stderr
    r = run("export", "--ckpt", str(tmp_path / "absent"), "--out", str(tmp_path / "o2"))
    assert r.returncode == 2 and "absent" in r.stderr
