"""Quality of the inference weight formats (issue 18) on a trained GPT: the
validation loss through the KV-cache path (cached_logits: the generation
path, so the packed weights are used) in fp32, bf16 and int8, with the LM
head packed and kept float32, and the relative L2 error of the logits against
fp32 (not part of CI).

    python bench/lowp_quality.py CKPT [--windows 32] [--out FILE.json]

CKPT: an lldl-gpt checkpoint trained on the fortunes (the README's run:
lldl-gpt train --data /usr/share/games/fortunes --tokenizer bpe --bpe-vocab
512 ...). The validation text is lldl-gpt's own split (val fraction 0.05,
seed 1337), encoded with the checkpoint's tokenizer; the loss is averaged
over `windows` windows of block_size tokens taken evenly from it.
"""
import argparse
import json
import os
import tempfile

import numpy as np
from safetensors import safe_open

import cppapi


def load(ckpt):
    with safe_open(ckpt, "np") as f:
        meta = f.metadata()
    c = cppapi.GPTConfig(int(meta["vocab_size"]), int(meta["block_size"]), int(meta["n_layer"]),
                         int(meta["n_head"]), int(meta["n_embd"]),
                         float(meta.get("layer_norm_epsilon", 1e-5)))
    m = cppapi.GPT(c)
    m.load(ckpt)
    assert meta["tokenizer"] == "bpe", meta["tokenizer"]
    with tempfile.NamedTemporaryFile("w", suffix=".bpe", delete=False) as t:
        t.write(meta["tokenizer.bpe"])
    tok = cppapi.BpeTokenizer.load(t.name)
    os.unlink(t.name)
    return m, c, tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("--windows", type=int, default=32)
    ap.add_argument("--out")
    a = ap.parse_args()
    m, c, tok = load(a.ckpt)
    _, val = cppapi.split_corpus(cppapi.load_fortunes("/usr/share/games/fortunes"), 0.05, 1337)
    ids = np.asarray(tok.encode(val), np.int32)
    T = c.block_size
    starts = np.linspace(0, len(ids) - T - 1, a.windows).astype(int)
    logits = {}
    res = {"ckpt": a.ckpt, "val_tokens": len(ids), "windows": a.windows, "block": T,
           "isa": cppapi.cpu_isa(), "formats": {}}
    for name, prec, head in [("fp32", "fp32", True), ("bf16", "bf16", True),
                             ("bf16, head fp32", "bf16", False), ("int8", "int8", True),
                             ("int8, head fp32", "int8", False)]:
        m.set_inference_precision(prec, head=head)
        losses, ls = [], []
        for s in starts:
            x, y = ids[s:s + T], ids[s + 1:s + T + 1]
            lg = m.cached_logits(x).astype(np.float64)
            ls.append(lg)
            mx = lg.max(1, keepdims=True)
            lse = mx[:, 0] + np.log(np.exp(lg - mx).sum(1))
            losses.append(lse - lg[np.arange(T), y])
        loss = float(np.mean(np.concatenate(losses)))
        L = np.stack(ls)
        logits[name] = L
        ref = logits["fp32"]
        r = dict(val_loss=loss, bytes_per_token=m.inference_weight_bytes(),
                 logits_rel_err=float(np.linalg.norm(L - ref) / np.linalg.norm(ref)),
                 loss_rel_change=loss / res["formats"]["fp32"]["val_loss"] - 1
                 if "fp32" in res["formats"] else 0.0)
        res["formats"][name] = r
        print(f"{name:16s} val loss {loss:.4f} ({r['loss_rel_change']:+.3%} vs fp32), logits rel "
              f"err {r['logits_rel_err']:.2e}, {r['bytes_per_token'] / 1e6:.2f} MB/token", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
