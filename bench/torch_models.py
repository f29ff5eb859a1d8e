"""The PyTorch side of the benchmarks, written the way a PyTorch user would:
nn.Linear / F.linear, F.scaled_dot_product_attention, nn.LSTM, a channels_last
CNN with pooling before an in-place ReLU, and a GPT that samples through its
own KV cache. Imported only by processes that measure PyTorch (never by lldl's).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class TorchGPT(nn.Module):
    """GPT-2 with nn.Linear-layout weights ([out, in], used through F.linear).

    P holds lldl's (GPT-2 Conv1D, [in, out]) tensors by GPT-2 name; they are
    transposed once here, so the two models compute the same function."""

    LINEARS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")

    def __init__(self, P, n_layer, n_head):
        super().__init__()
        conv1d = {f"h.{i}.{n}.weight" for i in range(n_layer) for n in self.LINEARS}
        self.P = nn.ParameterDict({
            k.replace(".", "_"): nn.Parameter(v.t().contiguous() if k in conv1d else v.clone())
            for k, v in P.items()})
        self.n_layer, self.n_head = n_layer, n_head

    def p(self, name):
        return self.P[name.replace(".", "_")]

    def _block(self, i, x, attend):
        p = lambda n: self.p(f"h.{i}.{n}")  # noqa: E731
        C = x.shape[-1]
        h = F.layer_norm(x, (C,), p("ln_1.weight"), p("ln_1.bias"))
        y = attend(i, F.linear(h, p("attn.c_attn.weight"), p("attn.c_attn.bias")))
        x = x + F.linear(y, p("attn.c_proj.weight"), p("attn.c_proj.bias"))
        h = F.layer_norm(x, (C,), p("ln_2.weight"), p("ln_2.bias"))
        h = F.gelu(F.linear(h, p("mlp.c_fc.weight"), p("mlp.c_fc.bias")), approximate="tanh")
        return x + F.linear(h, p("mlp.c_proj.weight"), p("mlp.c_proj.bias"))

    def _heads(self, t):
        B, T, C = t.shape
        return t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)

    def _logits(self, x):
        C = x.shape[-1]
        x = F.layer_norm(x, (C,), self.p("ln_f.weight"), self.p("ln_f.bias"))
        return F.linear(x, self.p("wte.weight"))

    def forward(self, idx, pos=0, cache=None):
        """Logits [B, T, V]. With a cache (list of per-layer [K, V] buffers of
        [B, H, block, C/H]), the tokens sit at positions pos.. and their keys
        and values are written into it: the KV-cache path of generate()."""
        B, T = idx.shape
        x = self.p("wte.weight")[idx] + self.p("wpe.weight")[pos:pos + T]

        def attend(i, qkv):
            C = qkv.shape[-1] // 3
            q, k, v = (self._heads(t) for t in qkv.split(C, dim=2))
            if cache is not None:
                kc, vc = cache[i]
                kc[:, :, pos:pos + T] = k
                vc[:, :, pos:pos + T] = v
                k, v = kc[:, :, :pos + T], vc[:, :, :pos + T]
            # One new query attends to every cached key; a prefill from 0 is causal.
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1)
            return y.transpose(1, 2).reshape(B, T, C)

        for i in range(self.n_layer):
            x = self._block(i, x, attend)
        return self._logits(x)

    @torch.no_grad()
    def generate(self, prompt, max_new, block, temperature=1.0, generator=None):
        """Samples max_new tokens after prompt ([1, T0]) through a KV cache
        (prompt + max_new <= block): one token's work per step."""
        B, T0 = prompt.shape
        C = self.p("wte.weight").shape[1]
        hd = C // self.n_head
        cache = [[torch.empty(B, self.n_head, block, hd) for _ in range(2)]
                 for _ in range(self.n_layer)]
        logits = self(prompt, 0, cache)[:, -1]
        out, pos = [], T0
        for _ in range(max_new):
            probs = F.softmax(logits / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)
            out.append(nxt)
            logits = self(nxt, pos, cache)[:, -1]
            pos += 1
        return torch.cat(out, dim=1)


class TorchLSTM(nn.Module):
    """nn.Embedding -> nn.LSTM -> nn.Linear, from lldl's tensors (one LSTM bias:
    bias_ih carries it, bias_hh is zero and frozen, as lldl has one vector)."""

    def __init__(self, P):
        super().__init__()
        V, E = P["embed.weight"].shape
        H = P["lstm.weight_hh_l0"].shape[1]
        self.emb = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, batch_first=True)
        self.head = nn.Linear(H, V)
        with torch.no_grad():
            self.emb.weight.copy_(P["embed.weight"])
            self.lstm.weight_ih_l0.copy_(P["lstm.weight_ih_l0"])
            self.lstm.weight_hh_l0.copy_(P["lstm.weight_hh_l0"])
            self.lstm.bias_ih_l0.copy_(P["lstm.bias"])
            self.lstm.bias_hh_l0.zero_()
            self.head.weight.copy_(P["head.weight"])
            self.head.bias.copy_(P["head.bias"])
        self.lstm.bias_hh_l0.requires_grad_(False)

    def forward(self, idx):
        h, _ = self.lstm(self.emb(idx))
        return self.head(h)

    @torch.no_grad()
    def generate(self, prompt, max_new, temperature=1.0, generator=None):
        """Samples max_new tokens after prompt ([1, T0]) carrying (h, c): the
        LSTM's counterpart of a KV cache, one token's work per step."""
        h, state = self.lstm(self.emb(prompt))
        logits = self.head(h[:, -1])
        out = []
        for _ in range(max_new):
            nxt = torch.multinomial(F.softmax(logits / temperature, dim=-1), 1, generator=generator)
            out.append(nxt)
            h, state = self.lstm(self.emb(nxt), state)
            logits = self.head(h[:, -1])
        return torch.cat(out, dim=1)


def cnn_model():
    """Issue 4's Fashion-MNIST network as a PyTorch user would tune it for the CPU:
    max-pool before the ReLU (the same function, a quarter of the ReLU's work)
    with in-place ReLUs, and channels_last weights."""
    m = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(inplace=True),
        nn.Conv2d(16, 32, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(inplace=True),
        nn.Flatten(), nn.Linear(1568, 128), nn.ReLU(inplace=True), nn.Linear(128, 10))
    return m.to(memory_format=torch.channels_last)


def adam(params, lr, **kw):
    """Adam or AdamW (weight_decay given) fused when this torch has the fused
    CPU kernel, else foreach: what a user who reads the docs would pick."""
    cls = torch.optim.AdamW if "weight_decay" in kw else torch.optim.Adam
    params = list(params)
    try:
        return cls(params, lr=lr, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, lr=lr, foreach=True, **kw)
