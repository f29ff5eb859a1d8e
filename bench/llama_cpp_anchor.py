"""Helpers of bench/llama_cpp_anchor.sh (the inference anchor; not part of CI).

    python bench/llama_cpp_anchor.py make-hf DIR TIKTOKEN   # random GPT-2 124M + GPT-2's tokenizer
    python bench/llama_cpp_anchor.py lldl DIR REPEATS       # lldl's generation on DIR, one process per repeat

make-hf: transformers.GPT2LMHeadModel(GPT2Config()) after torch.manual_seed(0),
save_pretrained (safetensors, F32), plus GPT-2's vocab.json / merges.txt
recovered from the tiktoken ranks (whisper's gpt2.tiktoken): each token of
rank r is split by running byte-level BPE on its bytes with only the merges of
rank < r, which ends in exactly two parts: that pair is merge r - 256.
"""
import base64
import json
import os
import statistics
import subprocess
import sys
import time


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def bpe_split(ranks, token, max_rank):
    parts = [bytes([b]) for b in token]
    while True:
        best, idx = None, None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < max_rank and (best is None or r < best):
                best, idx = r, i
        if best is None:
            return parts
        parts[idx:idx + 2] = [parts[idx] + parts[idx + 1]]


def make_hf(out, tiktoken_path):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast
    ranks = {}
    with open(tiktoken_path) as f:
        for line in f:
            if line.strip():
                tok, r = line.split()
                ranks[base64.b64decode(tok)] = int(r)
    assert len(ranks) == 50256, len(ranks)
    b2u = bytes_to_unicode()
    enc = lambda b: "".join(b2u[x] for x in b)
    vocab = {enc(t): r for t, r in ranks.items()}
    vocab["<|endoftext|>"] = 50256
    merges = []
    for tok, r in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) == 1:
            continue
        parts = bpe_split(ranks, tok, r)
        assert len(parts) == 2, (tok, parts)
        merges.append(enc(parts[0]) + " " + enc(parts[1]))
    assert len(merges) == 50000, len(merges)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    tok = GPT2TokenizerFast(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges])
    assert tok.encode("Hello world") == [15496, 995], tok.encode("Hello world")
    tok.save_pretrained(out)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).float().eval()
    model.save_pretrained(out)
    # transformers 5 no longer writes n_ctx (GPT-2's own config.json has it;
    # convert_hf_to_gguf's GPT-2 reads it)
    cfg_path = os.path.join(out, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg.setdefault("n_ctx", cfg["n_positions"])
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
    print(f"wrote {out}: GPT-2 124M, random weights (torch seed 0), tokenizer from {tiktoken_path}")


def lldl_once(d, prompt_len=32, new=128):
    import numpy as np
    import cppapi
    m = cppapi.GPT.from_pretrained(d)
    p = np.random.default_rng(123).integers(0, 50257, size=(1, prompt_len)).astype(np.int32)
    m.generate(p[:, :4], 2, temperature=0.0)  # warm-up: first touches of the weights
    t0 = time.perf_counter()
    out = m.generate(p, new, temperature=0.0)
    full = time.perf_counter() - t0
    assert out.shape == (1, prompt_len + new), out.shape
    t0 = time.perf_counter()
    m.generate(p, 1, temperature=0.0)
    first = time.perf_counter() - t0
    return full, first


def lldl(d, repeats, threads):
    rows = []
    for i in range(repeats):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   OPENBLAS_NUM_THREADS=str(threads))
        r = subprocess.run([sys.executable, __file__, "lldl-once", d], env=env,
                           capture_output=True, text=True, check=True)
        full, first = json.loads(r.stdout.strip().splitlines()[-1])
        rows.append((full, first))
    new = 128
    whole = [new / f for f, _ in rows]
    decode = [(new - 1) / (f - p) for f, p in rows]
    med = statistics.median
    print(f"lldl, {threads} thread(s), {repeats} processes:")
    print(f"  whole call, 32-token prompt + 128 new tokens: {med(whole):.1f} tokens/s "
          f"[{min(whole):.1f}-{max(whole):.1f}] (128 / wall time of generate, prefill included)")
    print(f"  decode only (127 / (t(generate 128) - t(generate 1))): {med(decode):.1f} tokens/s "
          f"[{min(decode):.1f}-{max(decode):.1f}]")
    print("RESULT " + json.dumps(dict(threads=threads, whole=med(whole), decode=med(decode),
                                      whole_range=[min(whole), max(whole)],
                                      decode_range=[min(decode), max(decode)])))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make-hf":
        make_hf(sys.argv[2], sys.argv[3])
    elif cmd == "lldl-once":
        print(json.dumps(lldl_once(sys.argv[2])))
    elif cmd == "lldl":
        lldl(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
