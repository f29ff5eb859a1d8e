"""lldl's GPT and char-LSTM against PyTorch, an independent reference.

The same tiny models are written here in PyTorch from the GPT-2 and nn.LSTM
definitions. Weights cross over through an lldl safetensors checkpoint read by
the `safetensors` package (so it also checks that lldl's files are standard).
Logits, loss and every parameter gradient must agree to a relative error of
1e-4 (max |lldl - torch| / max |torch| per tensor, float32 on both sides), and
so must the losses of 5 AdamW steps.
"""
import math

import numpy as np
import pytest

import cppapi

import torch  # noqa: E402  (a test dependency: requirements-dev.txt)
import safetensors.torch as st_torch  # noqa: E402
F = torch.nn.functional

TOL = 1e-4


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(np.abs(b).max(), 1e-12)
    return float(np.abs(a - b).max() / scale)


def torch_params(model, tmp_path):
    path = str(tmp_path / "weights.safetensors")
    model.save(path)
    tensors = st_torch.load_file(path)
    return {k: v.clone().requires_grad_(True) for k, v in tensors.items()}


def torch_gpt_logits(P, idx, cfg):
    B, T = idx.shape
    C, H = cfg.n_embd, cfg.n_head
    D = C // H
    x = P["wte.weight"][idx] + P["wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(cfg.n_layer):
        p = lambda n: P[f"h.{i}.{n}"]  # noqa: E731
        h = F.layer_norm(x, (C,), p("ln_1.weight"), p("ln_1.bias"), eps=1e-5)
        qkv = h @ p("attn.c_attn.weight") + p("attn.c_attn.bias")  # Conv1D: x @ W
        q, k, v = qkv.split(C, dim=2)
        q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ p("attn.c_proj.weight") + p("attn.c_proj.bias")
        h = F.layer_norm(x, (C,), p("ln_2.weight"), p("ln_2.bias"), eps=1e-5)
        h = F.gelu(h @ p("mlp.c_fc.weight") + p("mlp.c_fc.bias"), approximate="tanh")
        x = x + h @ p("mlp.c_proj.weight") + p("mlp.c_proj.bias")
    x = F.layer_norm(x, (C,), P["ln_f.weight"], P["ln_f.bias"], eps=1e-5)
    return x @ P["wte.weight"].T  # the tied LM head


def torch_lstm_logits(P, idx, cfg):
    lstm = torch.nn.LSTM(cfg.n_embd, cfg.n_hidden, batch_first=True)
    # Bind the parameters functionally so gradients land in P.
    params = {
        "weight_ih_l0": P["lstm.weight_ih_l0"],
        "weight_hh_l0": P["lstm.weight_hh_l0"],
        "bias_ih_l0": P["lstm.bias"],
        "bias_hh_l0": torch.zeros_like(P["lstm.bias"]),
    }
    x = F.embedding(idx, P["embed.weight"])
    h, _ = torch.func.functional_call(lstm, params, (x,))
    return F.linear(h, P["head.weight"], P["head.bias"])


CASES = {
    "gpt": (lambda: cppapi.GPT(cppapi.GPTConfig(vocab_size=23, block_size=16, n_layer=2,
                                                n_head=4, n_embd=32), seed=3),
            torch_gpt_logits, 16),
    "lstm": (lambda: cppapi.LSTM(cppapi.LSTMConfig(vocab_size=23, n_embd=16, n_hidden=24), seed=3),
             torch_lstm_logits, 20),
    # The per-token path at every batch size (table_projection=False).
    "lstm_per_token": (lambda: cppapi.LSTM(cppapi.LSTMConfig(vocab_size=23, n_embd=16,
                                                             n_hidden=24, table_projection=False),
                                           seed=3),
                       torch_lstm_logits, 20),
}


@pytest.fixture(autouse=True)
def torch_threads():
    torch.manual_seed(0)
    torch.set_num_threads(1)


# The LSTM projects the embedding table instead of the tokens when the batch
# has at least vocab_size (23) tokens: 3 x 20 takes that path, 1 x 20 the
# per-token one, and so does 3 x 20 with table_projection=False.
@pytest.mark.parametrize("kind,B", [("gpt", 3), ("lstm", 3), ("lstm", 1), ("lstm_per_token", 3)])
def test_logits_loss_and_every_gradient_match_pytorch(kind, B, tmp_path):
    make, torch_logits, T = CASES[kind]
    model = make()
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 23, size=(B, T)).astype(np.int32)
    tgt = rng.integers(0, 23, size=(B, T)).astype(np.int32)
    P = torch_params(model, tmp_path)

    logits = model.forward(idx)
    ref = torch_logits(P, torch.from_numpy(idx).long(), model.config)
    assert logits.shape == tuple(ref.shape)
    assert rel_err(logits, ref.detach()) <= TOL

    loss = model.loss(idx, tgt)
    ref_loss = F.cross_entropy(ref.reshape(-1, 23), torch.from_numpy(tgt).long().reshape(-1))
    assert abs(loss - ref_loss.item()) <= TOL * abs(ref_loss.item())
    model.backward()
    ref_loss.backward()
    grads = model.grads()
    assert set(grads) == set(P)
    for name, g in grads.items():
        assert P[name].grad is not None, name
        err = rel_err(g, P[name].grad)
        assert err <= TOL, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("kind", CASES)
def test_five_adamw_steps_match_pytorch(kind, tmp_path):
    make, torch_logits, T = CASES[kind]
    model = make()
    P = torch_params(model, tmp_path)
    model.configure_optimizer(lr=3e-3, weight_decay=0.1, betas=(0.9, 0.95), eps=1e-8)
    opt = torch.optim.AdamW(list(P.values()), lr=3e-3, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=0.1)
    rng = np.random.default_rng(2)
    ours, theirs = [], []
    for _ in range(6):
        idx = rng.integers(0, 23, size=(4, T)).astype(np.int32)
        tgt = rng.integers(0, 23, size=(4, T)).astype(np.int32)
        ours.append(model.loss(idx, tgt))
        model.backward()
        model.step()
        model.zero_grad()
        opt.zero_grad()
        ref = torch_logits(P, torch.from_numpy(idx).long(), model.config)
        loss = F.cross_entropy(ref.reshape(-1, 23), torch.from_numpy(tgt).long().reshape(-1))
        theirs.append(loss.item())
        loss.backward()
        opt.step()
    # The 6th loss is measured after 5 steps.
    for a, b in zip(ours, theirs):
        assert abs(a - b) <= TOL * abs(b)
    assert ours[-1] != ours[0]
    params = model.parameters()
    for name, p in P.items():
        ours_p, ref_p = params[name], p.detach().numpy()
        if name.endswith("attn.c_attn.bias"):
            # The key bias adds q_t . b_k to every score of row t: softmax
            # ignores it, so its true gradient is exactly 0 and both sides hold
            # rounding noise (~1e-11), which Adam's g / sqrt(v) turns into
            # steps of up to lr in arbitrary directions. Those entries can
            # only be bounded; the query and value biases are compared.
            C = model.config.n_embd
            assert np.abs(ours_p[C:2 * C] - ref_p[C:2 * C]).max() <= 2 * 3e-3 * 5
            keep = np.r_[0:C, 2 * C:3 * C]
            ours_p, ref_p = ours_p[keep], ref_p[keep]
        assert rel_err(ours_p, ref_p) <= TOL, name


def test_gpt_cached_generation_matches_uncached_logits():
    model = cppapi.GPT(cppapi.GPTConfig(23, 16, 2, 4, 32), seed=5)
    seq = np.random.default_rng(3).integers(0, 23, size=16).astype(np.int32)
    full = model.forward(seq[None, :])[0]
    cached = model.cached_logits(seq)
    assert np.abs(full - cached).max() <= 1e-4
    lstm = cppapi.LSTM(cppapi.LSTMConfig(23, 16, 24), seed=5)
    assert np.abs(lstm.forward(seq[None, :])[0] - lstm.stepwise_logits(seq)).max() <= 1e-4


def test_generate_shapes_and_bad_arguments():
    model = cppapi.GPT(cppapi.GPTConfig(23, 8, 1, 2, 16))
    out = model.generate(np.array([1, 2, 3]), 12, temperature=0.9, top_k=5, seed=1)
    assert out.shape == (15,) and out.dtype == np.int32
    assert list(out[:3]) == [1, 2, 3] and out.max() < 23
    out2 = model.generate(np.array([[1, 2], [3, 4]]), 4)
    assert out2.shape == (2, 6)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(np.array([1]), 3, top_k=0)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(np.array([1]), 3, temperature=-1)
    with pytest.raises(ValueError, match="prompt is empty"):
        model.generate(np.array([], dtype=np.int32), 3)
    with pytest.raises(ValueError, match="token id 23"):
        model.forward(np.array([[1, 23]]))
    with pytest.raises(ValueError, match="longer than block_size 8"):
        model.forward(np.zeros((1, 9), dtype=np.int32))
    with pytest.raises(TypeError, match="integer array"):
        model.forward(np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="divisible by n_head"):
        cppapi.GPTConfig(23, 8, 1, 3, 16)
    with pytest.raises(ValueError, match="must have idx's shape"):
        model.loss(np.zeros((1, 4), np.int32), np.zeros((1, 3), np.int32))
