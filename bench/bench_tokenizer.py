"""GPT-2 tokenizer throughput on the whole fortunes corpus: lldl's
GPT2Tokenizer against Hugging Face tokenizers (Rust; one string, and a batch of
the fortunes' entries), tiktoken, transformers' GPT2Tokenizer and a pure-Python
GPT-2 BPE.

    .venv/bin/python bench/bench_tokenizer.py [--repeats 5] [--threads 1]

tokenizers runs its batch on --threads Rayon threads. Every tokenizer loads
GPT-2's own vocabulary: llama.cpp's ggml-vocab-gpt-2.gguf
written out as vocab.json + merges.txt, and gpt2.tiktoken for tiktoken (both
fetched by ./dev.sh into .cache/gpt2). Each measurement runs in its own
process with the thread variables set before any import, in alternating order;
a process times one encode of the corpus from a cold start (load, then encode:
only the encode is timed, so per-word caches start empty). All ids are checked
equal to lldl's. Figures: median and range over the repeats of the wall time
(with bytes/s and tokens/s) and of the process's CPU time, which other load on
a shared machine disturbs less; "lldl is" is a peer's time over lldl's.

The pure-Python peer: transformers 5 no longer has the pure-Python
GPT2Tokenizer (its GPT2Tokenizer is now backed by tokenizers), so `python-bpe`
is the same algorithm written here: the `regex` module's findall with GPT-2's
pattern, the byte table, and BPE over a merge-rank dict with a word cache.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / ".cache" / "gpt2"
PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
PEERS = ["lldl", "tokenizers", "tokenizers-batch", "tiktoken", "transformers", "python-bpe"]


def byte_table():
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table, n = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return table


class PythonBpe:
    """GPT-2's BPE in plain Python (the algorithm of the former slow tokenizer)."""

    def __init__(self, vocab, merges):
        import regex

        self.pat = regex.compile(PATTERN)
        self.vocab = json.loads(Path(vocab).read_text(encoding="utf-8"))
        lines = Path(merges).read_text(encoding="utf-8").split("\n")[1:]
        self.ranks = {tuple(l.split(" ")): i for i, l in enumerate(lines) if l}
        self.table = byte_table()
        self.cache = {}

    def bpe(self, word):
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(parts, parts[1:]))]
            rank, i = min(pairs)
            if rank == 1 << 30:
                break
            first, second = parts[i], parts[i + 1]
            out, j = [], 0
            while j < len(parts):  # merge every occurrence, left to right
                if j + 1 < len(parts) and parts[j] == first and parts[j + 1] == second:
                    out.append(first + second)
                    j += 2
                else:
                    out.append(parts[j])
                    j += 1
            parts = out
        return [self.vocab[p] for p in parts]

    def encode(self, text):
        ids = []
        for piece in self.pat.findall(text):
            word = "".join(self.table[b] for b in piece.encode("utf-8"))
            got = self.cache.get(word)
            if got is None:
                got = self.cache[word] = self.bpe(word)
            ids += got
        return ids


def worker(name, files, corpus_path):
    """Loads one tokenizer, times one encode of the corpus; prints JSON."""
    text = Path(corpus_path).read_text(encoding="utf-8")
    vocab, merges = str(Path(files) / "vocab.json"), str(Path(files) / "merges.txt")
    if name == "lldl":
        import cppapi

        tok = cppapi.GPT2Tokenizer.from_files(vocab, merges)
        run = lambda: tok.encode(text).tolist()  # noqa: E731
    elif name in ("tokenizers", "tokenizers-batch"):
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        tok = Tokenizer(models.BPE.from_file(vocab, merges))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        if name == "tokenizers":
            run = lambda: tok.encode(text).ids  # noqa: E731
        else:
            # The batch: the corpus cut between the '%' and the newline of each
            # entry separator, always a piece boundary, so the ids equal the
            # whole string's.
            parts = text.split("\n%\n")
            parts = [("\n" if i else "") + p + ("\n%" if i + 1 < len(parts) else "") for i, p in enumerate(parts)]
            run = lambda: [i for e in tok.encode_batch(parts) for i in e.ids]  # noqa: E731
    elif name == "tiktoken":
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe

        tok = tiktoken.Encoding(name="gpt2-local", pat_str=PATTERN,
                                mergeable_ranks=load_tiktoken_bpe(str(ASSETS / "gpt2.tiktoken")),
                                special_tokens={"<|endoftext|>": 50256})
        run = lambda: tok.encode_ordinary(text)  # noqa: E731
    elif name == "transformers":
        from transformers import GPT2Tokenizer

        tok = GPT2Tokenizer.from_pretrained(files)  # transformers 5: backed by tokenizers
        run = lambda: tok.encode(text, verbose=False)  # noqa: E731
    elif name == "python-bpe":
        tok = PythonBpe(vocab, merges)
        run = lambda: tok.encode(text)  # noqa: E731
    else:
        raise SystemExit(f"unknown tokenizer {name}")
    t0, c0 = time.perf_counter(), time.process_time()
    ids = run()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": dt, "cpu": cpu, "tokens": len(ids), "checksum": hash(tuple(ids)) & 0xFFFFFFFF}))


def write_gpt2_files(out):
    import gguf

    r = gguf.GGUFReader(str(ASSETS / "ggml-vocab-gpt-2.gguf"))

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens = strings("tokenizer.ggml.tokens")
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(strings("tokenizer.ggml.merges")) + "\n",
                                    encoding="utf-8")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="threads of every peer (batch: Rayon's)")
    ap.add_argument("--only", default=",".join(PEERS))
    ap.add_argument("--worker")
    ap.add_argument("--files")
    ap.add_argument("--corpus")
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.files, a.corpus)
    for f in ("gpt2.tiktoken", "ggml-vocab-gpt-2.gguf"):
        if not (ASSETS / f).is_file():
            raise SystemExit(f"{ASSETS / f} is missing: ./dev.sh fetches it (pip download of the sdists)")
    import cppapi

    peers = a.only.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_gpt2_files(tmp)
        corpus = "\n%\n".join(cppapi.load_fortunes())
        (tmp / "corpus.txt").write_text(corpus, encoding="utf-8")
        nbytes = len(corpus.encode("utf-8"))
        env = dict(os.environ)
        for v in ("OMP_NUM_THREADS", "LLDL_NUM_THREADS", "RAYON_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "MKL_NUM_THREADS"):
            env[v] = str(a.threads)
        env["TOKENIZERS_PARALLELISM"] = "true" if a.threads > 1 else "false"
        times = {p: [] for p in peers}
        cpus = {p: [] for p in peers}
        result = {}
        for rep in range(a.repeats):
            for p in (peers if rep % 2 == 0 else peers[::-1]):  # alternate the order
                out = subprocess.run([sys.executable, __file__, "--worker", p, "--files", str(tmp),
                                      "--corpus", str(tmp / "corpus.txt")],
                                     env=env, check=True, capture_output=True, text=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                times[p].append(r["seconds"])
                cpus[p].append(r["cpu"])
                result.setdefault(p, r)
                if r["checksum"] != result[p]["checksum"]:
                    raise SystemExit(f"{p}: ids differ between runs")
        ref = result.get("lldl")
        print(f"GPT-2 vocabulary, fortunes: {nbytes:,} bytes; {a.repeats} repeats, {a.threads} thread(s), "
              f"one process per measurement; noisy shared machine: figures are provisional")
        print("wall: seconds of the encode; cpu: its process CPU seconds (less sensitive to other load)")
        print(f"{'tokenizer':18} {'tokens':>9} {'median s':>9} {'range s':>15} {'MB/s':>7} {'Mtok/s':>7} "
              f"{'lldl is':>8} {'cpu s':>7} {'cpu range':>13} {'lldl is':>8}  ids")
        med_lldl = statistics.median(times["lldl"]) if "lldl" in times else None
        cpu_lldl = statistics.median(cpus["lldl"]) if "lldl" in cpus else None
        for p in peers:
            med = statistics.median(times[p])
            same = "=" if ref is None or (result[p]["checksum"] == ref["checksum"]
                                           and result[p]["tokens"] == ref["tokens"]) else "DIFFER"
            ratio = f"{med / med_lldl:7.2f}x" if med_lldl else "-"
            cpu = statistics.median(cpus[p])
            cratio = f"{cpu / cpu_lldl:7.2f}x" if cpu_lldl else "-"
            print(f"{p:18} {result[p]['tokens']:>9,} {med:9.3f} {min(times[p]):7.3f}-{max(times[p]):<7.3f} "
                  f"{nbytes / med / 1e6:7.2f} {result[p]['tokens'] / med / 1e6:7.3f} {ratio:>8} "
                  f"{cpu:7.3f} {min(cpus[p]):6.3f}-{max(cpus[p]):<6.3f} {cratio:>8}  {same}")


if __name__ == "__main__":
    main()
