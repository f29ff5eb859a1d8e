"""GPT2Tokenizer against the references: Hugging Face tokenizers' ByteLevel BPE
loaded from the same files (trained here on the fortunes, no download), tiktoken
with GPT-2's ranks, and llama.cpp's GPT-2 vocabulary test. GPT-2's own files
come from the sdists ./dev.sh fetches into .cache/gpt2; without them those
tests skip, saying why."""
import json
import os
import random
import unicodedata
from pathlib import Path

import numpy as np
import pytest

import cppapi

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import Tokenizer, decoders, models, pre_tokenizers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ASSETS = Path(os.environ.get("LLDL_GPT2_ASSETS", ROOT / ".cache" / "gpt2"))
TIKTOKEN_FILE = ASSETS / "gpt2.tiktoken"
GGUF_FILE = ASSETS / "ggml-vocab-gpt-2.gguf"
WHY = "GPT-2's files are fetched by ./dev.sh (pip download of the openai-whisper / llama-cpp-python sdists)"
needs_tiktoken_file = pytest.mark.skipif(not TIKTOKEN_FILE.is_file(), reason=f"no {TIKTOKEN_FILE}: {WHY}")
needs_gguf_file = pytest.mark.skipif(not GGUF_FILE.is_file(), reason=f"no {GGUF_FILE}: {WHY}")
needs_fortunes = pytest.mark.skipif(not os.path.isdir(cppapi.FORTUNES_DIR), reason="fortunes not installed")

EOT = "<|endoftext|>"

ADVERSARIAL = [
    "", " ", "  ", "\t", "\n", "\n\n\n", " \n \n", "a  b", "a   b", "a\t\tb", "a \t b", "x\u00a0\u00a0y",
    "tabs\t\t\tand\n\n\r\nnewlines\r\n", " " * 100 + "end", "\u3000full\u3000width\u3000space",
    "It's John's dog; they're here, we've, I'm, you'll, he'd.", "IT'S JOHN'S DOG, THEY'RE, I'M, YOU'LL",
    "'s's 'S 'sss ''s '' ' 's", "don't 'tis 'lls 're've'm'd",
    "abc123def 4567 x1y2z3 3.14159 1,000,000 ⅓ ² ٣٤٥ 四五六",
    "Hello 👋🏽 world 👨‍👩‍👧‍👦 family 🏳️‍🌈 flag 🇫🇷 ❤️",
    "e\u0301te\u0301 n\u0303 a\u0308\u0304 Z\u0351\u0352\u0353a\u0489lgo",
    "日本語のテキスト、中文文本。한국어 텍스트", "مرحبا بالعالم ١٢٣ שלום עולם",
    "Ελληνικά Кириллица Ǆǅǆ ﬁ ß ẞ", "<|endoftext|>", "a<|endoftext|>b <|endoftext|> c<|endoftext|><|endoftext|>",
    "<|endoftext", "!!!???... --- ***", "a!b@c#d$e%f^g&h*i(j)k", "\x00\x01\x02\x7f", "\ufeffBOM \ufffd",
    "😀" * 50, "x" * 300, "😀x😀 😀 x 😀",
]

# Byte strings that are not UTF-8: lone continuation bytes, truncated
# sequences, overlongs, surrogates, bytes above U+10FFFF, and mixtures.
INVALID = [
    b"\x80", b"\xff", b"abc\xffdef", b" \xff", b"\xff ", b"a \xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82x",
    b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80",
    b"it\x92s", b"1\x802", b"\xff\xfe\xfd!!", b"  \xff", b"\xff\xff 's", b"caf\xe9 cr\xe8me", b"\xe6\x97\xa5\xe6\x97",
]


def bytes_to_unicode():
    """GPT-2's byte table, written out independently of lldl's."""
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table, n = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return table


def hf_tokenizer(vocab, merges, special=(EOT,)):
    """tokenizers' ByteLevel BPE from vocab.json + merges.txt, as GPT-2 sets it up."""
    tok = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(special))
    return tok


def hf_encode_bytes(tok, data):
    """tokenizers' ids for any bytes: each invalid byte is pre-tokenized as
    U+FFFD would be (lldl's documented rule), each piece keeps its bytes, and
    tokenizers' own BPE model encodes them."""
    text = data.decode("utf-8", "surrogateescape")
    stand_in = "".join("\ufffd" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in text)
    table = bytes_to_unicode()
    ids = []
    for _, (a, b) in tok.pre_tokenizer.pre_tokenize_str(stand_in):
        raw = text[a:b].encode("utf-8", "surrogateescape")
        ids += [t.id for t in tok.model.tokenize("".join(table[x] for x in raw))]
    return ids


@pytest.fixture(scope="module")
def fortunes():
    return cppapi.load_fortunes()


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, fortunes):
    """vocab.json, merges.txt and tokenizer.json of a 3000-token ByteLevel BPE
    trained on the fortunes (with <|endoftext|>)."""
    from tokenizers import ByteLevelBPETokenizer

    d = tmp_path_factory.mktemp("fortunes-bpe")
    t = ByteLevelBPETokenizer()
    t.train_from_iterator(fortunes, vocab_size=3000, special_tokens=[EOT], show_progress=False)
    t.save_model(str(d))
    t.save(str(d / "tokenizer.json"))
    return d


@pytest.fixture(scope="module")
def pair(trained_dir):
    """(lldl, tokenizers) from the same vocab.json + merges.txt."""
    v, m = trained_dir / "vocab.json", trained_dir / "merges.txt"
    return cppapi.GPT2Tokenizer.from_files(str(v), str(m)), hf_tokenizer(v, m)


def ids(a):
    return np.asarray(a, dtype=np.int64).tolist()


# --- against tokenizers, trained vocabulary ----------------------------------

@needs_fortunes
def test_every_fortune_matches_tokenizers(pair, fortunes):
    lldl, hf = pair
    want = [e.ids for e in hf.encode_batch(fortunes)]
    bad = [i for i, (f, w) in enumerate(zip(fortunes, want)) if ids(lldl.encode(f)) != w]
    assert not bad, f"{len(bad)} of {len(fortunes)} fortunes differ, first: {fortunes[bad[0]]!r}"


@needs_fortunes
def test_whole_corpus_as_one_string_matches_tokenizers(pair, fortunes):
    lldl, hf = pair
    text = "\n%\n".join(fortunes)
    assert ids(lldl.encode(text)) == hf.encode(text).ids


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_adversarial_strings_match_tokenizers(pair, text):
    lldl, hf = pair
    got = ids(lldl.encode(text))
    assert got == hf.encode(text).ids
    assert lldl.decode(got) == text
    assert lldl.decode(got) == hf.decode(got, skip_special_tokens=False)


def test_code_points_are_classed_as_tokenizers_classes_them(pair):
    """Each code point between neighbours of each class (letter, digit, space,
    symbol): any disagreement on \\p{L}, \\p{N} or \\s changes the pieces.
    Every code point of planes 0-3 (where all letters and numbers of Unicode 14
    lie) and of plane 14, every 101st of the rest (unassigned or private use:
    Other)."""
    lldl, hf = pair
    cps = [c for c in range(1, 0x110000)
           if not 0xD800 <= c <= 0xDFFF and (c < 0x40000 or 0xE0000 <= c < 0xF0000 or c % 101 == 0)]
    starts = range(0, len(cps), 1000)  # short texts: tokenizers is slow on long ones
    texts = ["".join(chr(c) + "a1 !"[i % 4] + chr(c) for i, c in enumerate(cps[s:s + 1000])) for s in starts]
    for s, text, want in zip(starts, texts, hf.encode_batch(texts)):
        assert ids(lldl.encode_ordinary(text)) == want.ids, f"code points from U+{cps[s]:04X} pre-tokenize differently"


@pytest.mark.parametrize("data", INVALID)
def test_invalid_utf8_is_cut_as_if_each_bad_byte_were_u_fffd(pair, data):
    lldl, hf = pair
    got = ids(lldl.encode(data))
    assert got == hf_encode_bytes(hf, data)
    assert lldl.decode_bytes(got) == data
    assert lldl.decode(got) == data  # not UTF-8: bytes come back


def test_random_bytes_match_the_invalid_byte_rule_and_round_trip(pair):
    lldl, hf = pair
    rng = random.Random(7)
    for n in range(200):
        data = bytes(rng.choice(b"ab 1'!\t\n\x80\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff") for _ in range(rng.randrange(40)))
        got = ids(lldl.encode(data))
        assert got == hf_encode_bytes(hf, data), data
        assert lldl.decode_bytes(got) == data


def test_valid_text_reference_agrees_with_the_invalid_byte_reference(pair):
    # The helper used for invalid bytes is tokenizers itself on valid text.
    lldl, hf = pair
    for text in ADVERSARIAL:
        if EOT not in text:
            assert hf_encode_bytes(hf, text.encode()) == hf.encode(text).ids


@needs_fortunes
def test_round_trip_on_the_fortunes(pair, fortunes):
    lldl, _ = pair
    text = "\n%\n".join(fortunes)
    assert lldl.decode(lldl.encode(text)) == text


@needs_fortunes
def test_encoding_from_many_threads_at_once_gives_the_same_ids(trained_dir, fortunes):
    """encode releases the GIL and shares the piece cache between threads."""
    from concurrent.futures import ThreadPoolExecutor

    t = cppapi.GPT2Tokenizer.from_files(str(trained_dir / "vocab.json"), str(trained_dir / "merges.txt"))
    chunks = ["\n".join(fortunes[i::8]) for i in range(8)]
    alone = [ids(t.encode(c)) for c in chunks]
    fresh = cppapi.GPT2Tokenizer.from_files(str(trained_dir / "vocab.json"), str(trained_dir / "merges.txt"))
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda c: ids(fresh.encode(c)), chunks + chunks))
    assert together == alone + alone


# --- loading ------------------------------------------------------------------

def test_from_pretrained_reads_added_tokens_of_tokenizer_json(trained_dir):
    t = cppapi.GPT2Tokenizer.from_pretrained(str(trained_dir))
    hf = Tokenizer.from_file(str(trained_dir / "tokenizer.json"))
    assert t.vocab_size == hf.get_vocab_size()
    assert t.eot_token == hf.token_to_id(EOT)
    text = f"one{EOT}two {EOT}"
    assert ids(t.encode(text)) == hf.encode(text).ids
    assert ids(t.encode_ordinary(EOT)) != [t.eot_token]


def test_from_pretrained_with_a_special_tokens_map_only(trained_dir, tmp_path):
    for f in ("vocab.json", "merges.txt"):
        (tmp_path / f).write_bytes((trained_dir / f).read_bytes())
    plain = cppapi.GPT2Tokenizer.from_pretrained(str(tmp_path))  # <|endoftext|> in vocab: special
    (tmp_path / "special_tokens_map.json").write_text(json.dumps(
        {"eos_token": {"content": EOT, "lstrip": False}, "bos_token": EOT}))
    mapped = cppapi.GPT2Tokenizer.from_pretrained(str(tmp_path))
    assert plain.special_tokens == mapped.special_tokens == {EOT: plain.eot_token}


def test_special_tokens_absent_from_the_vocab_get_the_next_ids(trained_dir):
    v, m = trained_dir / "vocab.json", trained_dir / "merges.txt"
    t = cppapi.GPT2Tokenizer.from_files(str(v), str(m), special_tokens=[EOT, "<|pad|>"])
    hf = hf_tokenizer(v, m, special=[EOT, "<|pad|>"])
    assert t.vocab_size == hf.get_vocab_size() == 3001
    text = "a<|pad|>b<|endoftext|>"
    assert ids(t.encode(text)) == hf.encode(text).ids


def write(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(p)


SMALL_VOCAB = {bytes_to_unicode()[b]: b for b in range(256)} | {"Ġt": 256, "Ġth": 257}


@pytest.mark.parametrize("vocab,merges,pattern", [
    (None, "#version: 0.2\n", r"cannot read .*vocab\.json"),
    ('{"a": 0,\n "b": x}', "", r"vocab\.json:2: malformed vocab\.json: expected a non-negative integer"),
    ('{"a": 0,\n "b": 1.5}', "", r"vocab\.json:2: .*not an integer"),
    ('{"a": 0,\n "b": 0}', "", r"vocab\.json:2: id 0 is given to two tokens"),
    ('{"a": 0, "b": 1', "", r"vocab\.json:1: .*expected '}'"),
    ('{"a": 0} x', "", r"vocab\.json:1: .*data after the object"),
    ('{"a\\q": 0}', "", r"bad escape"),
    (json.dumps(SMALL_VOCAB), "#version: 0.2\nĠ t\nĠt h\nĠ ☃\n", r"merges\.txt:4: token '☃' is not in vocab\.json"),
    (json.dumps(SMALL_VOCAB), "Ġ t\nĠt  h\n", r"merges\.txt:2: expected two tokens"),
    (json.dumps(SMALL_VOCAB), "Ġ t\nh e\n", r"merges\.txt:2: the merged token 'he' is not in vocab\.json"),
    (json.dumps(SMALL_VOCAB), "Ġ t\nĠ t\n", r"merges\.txt:2: merge 'Ġ t' is given twice"),
    (json.dumps(SMALL_VOCAB), None, r"cannot read .*merges\.txt"),
])
def test_bad_vocab_or_merges_name_the_file_and_line(tmp_path, vocab, merges, pattern):
    v = str(tmp_path / "vocab.json") if vocab is None else write(tmp_path, "vocab.json", vocab)
    m = str(tmp_path / "merges.txt") if merges is None else write(tmp_path, "merges.txt", merges)
    with pytest.raises(ValueError, match=pattern):
        cppapi.GPT2Tokenizer.from_files(v, m)


def test_a_small_hand_written_vocabulary_merges_as_ranked(tmp_path):
    v = write(tmp_path, "vocab.json", json.dumps(SMALL_VOCAB))
    m = write(tmp_path, "merges.txt", "#version: 0.2\nĠ t\nĠt h\n")
    t = cppapi.GPT2Tokenizer.from_files(v, m, special_tokens=[])
    assert ids(t.encode(" th the")) == [257, 257, ord("e")]
    assert ids(t.encode(" t")) == [256] and t.eot_token is None


@pytest.mark.parametrize("content,pattern", [
    ("IQ== 0\nIg== 1\n!!!! 2\n", r"x\.tiktoken:3: bad base64 '!!!!'"),
    ("IQ== 0\nIg==\n", r"x\.tiktoken:2: expected"),
    ("IQ== 0\nIg== one\n", r"x\.tiktoken:2: bad rank 'one'"),
    ("IQ== 0\nIQ== 1\n", r"x\.tiktoken:2: a token is given two ids"),
    ("IQ== 0\nIg== 0\n", r"x\.tiktoken:2: id 0 is given to two tokens"),
    ("IQ= 0\n", r"x\.tiktoken:1: bad base64"),
])
def test_bad_tiktoken_files_name_the_file_and_line(tmp_path, content, pattern):
    with pytest.raises(ValueError, match=pattern):
        cppapi.GPT2Tokenizer.from_tiktoken(write(tmp_path, "x.tiktoken", content))


def test_bad_tokenizer_directories(tmp_path, trained_dir):
    with pytest.raises(ValueError, match="not a directory"):
        cppapi.GPT2Tokenizer.from_pretrained(str(tmp_path / "nope"))
    for f in ("vocab.json", "merges.txt"):
        (tmp_path / f).write_bytes((trained_dir / f).read_bytes())
    write(tmp_path, "tokenizer.json", '{"added_tokens": [\n{"id": 1, ')
    with pytest.raises(ValueError, match=r"tokenizer\.json: malformed JSON.*line 2"):
        cppapi.GPT2Tokenizer.from_pretrained(str(tmp_path))
    write(tmp_path, "tokenizer.json", json.dumps({"added_tokens": [{"id": 5, "content": EOT}]}))
    with pytest.raises(ValueError, match=r"tokenizer\.json: added token '<\|endoftext\|>' has id 5 but vocab\.json gives it 0"):
        cppapi.GPT2Tokenizer.from_pretrained(str(tmp_path))
    write(tmp_path, "tokenizer.json", json.dumps({"added_tokens": [{"id": "x", "content": EOT}]}))
    with pytest.raises(ValueError, match=r"tokenizer\.json: unexpected JSON content"):
        cppapi.GPT2Tokenizer.from_pretrained(str(tmp_path))
    os.remove(tmp_path / "tokenizer.json")
    write(tmp_path, "special_tokens_map.json", json.dumps({"pad_token": "<|nope|>"}))
    with pytest.raises(ValueError, match=r"special_tokens_map\.json: special token '<\|nope\|>' \(pad_token\) is not in"):
        cppapi.GPT2Tokenizer.from_pretrained(str(tmp_path))


def test_decode_and_encode_reject_bad_arguments(pair):
    t, _ = pair
    n = t.vocab_size
    with pytest.raises(ValueError, match=rf"id {n} at position 1 is not in the vocabulary \(size {n}\)"):
        t.decode([1, n])
    with pytest.raises(ValueError, match="id -1 at position 0"):
        t.decode(np.array([-1]))
    with pytest.raises(TypeError, match="ids must be integers"):
        t.decode(np.array([1.0]))
    with pytest.raises(TypeError, match="text must be str or bytes"):
        t.encode(3)
    assert t.encode("").dtype == np.int32 and t.decode([]) == ""


# --- GPT-2's real encoding ----------------------------------------------------

@pytest.fixture(scope="module")
def gpt2():
    return cppapi.GPT2Tokenizer.from_tiktoken(str(TIKTOKEN_FILE))


@pytest.fixture(scope="module")
def tiktoken_gpt2():
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import load_tiktoken_bpe

    return tiktoken.Encoding(
        name="gpt2-local",
        pat_str=r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
        mergeable_ranks=load_tiktoken_bpe(str(TIKTOKEN_FILE)), special_tokens={EOT: 50256})


@needs_tiktoken_file
def test_gpt2_hello_my_name_is(gpt2):
    assert ids(gpt2.encode("Hello my name is")) == [15496, 616, 1438, 318]
    assert gpt2.vocab_size == 50257 and gpt2.eot_token == 50256
    assert gpt2.decode([15496, 616, 1438, 318, 50256]) == "Hello my name is" + EOT


@needs_tiktoken_file
@needs_fortunes
def test_gpt2_matches_tiktoken_on_the_fortunes(gpt2, tiktoken_gpt2, fortunes):
    want = tiktoken_gpt2.encode_ordinary_batch(fortunes, num_threads=1)
    bad = [i for i, (f, w) in enumerate(zip(fortunes, want)) if ids(gpt2.encode(f)) != w]
    assert not bad, f"{len(bad)} fortunes differ, first: {fortunes[bad[0]]!r}"


@needs_tiktoken_file
@pytest.mark.parametrize("text", ADVERSARIAL)
def test_gpt2_matches_tiktoken_on_adversarial_strings(gpt2, tiktoken_gpt2, text):
    got = ids(gpt2.encode(text))
    assert got == tiktoken_gpt2.encode(text, allowed_special="all")
    assert gpt2.decode(got) == text


@needs_tiktoken_file
@needs_gguf_file
@needs_fortunes
def test_gpt2_from_llama_cpp_gguf_matches_its_expected_ids_tiktoken_and_tokenizers(tmp_path, gpt2, fortunes):
    """llama.cpp's GPT-2 vocabulary (read with the gguf package) written as
    vocab.json + merges.txt: lldl from those files gives llama.cpp's expected
    ids on its test strings, equals tokenizers on them and equals lldl from
    gpt2.tiktoken on the fortunes."""
    gguf = pytest.importorskip("gguf")
    r = gguf.GGUFReader(str(GGUF_FILE))

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens, merges = strings("tokenizer.ggml.tokens"), strings("tokenizer.ggml.merges")
    assert len(tokens) == 50257 and len(merges) == 50000
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    t = cppapi.GPT2Tokenizer.from_pretrained(str(tmp_path))
    hf = hf_tokenizer(tmp_path / "vocab.json", tmp_path / "merges.txt")
    inp = GGUF_FILE.with_name(GGUF_FILE.name + ".inp").read_text(encoding="utf-8")
    out = GGUF_FILE.with_name(GGUF_FILE.name + ".out").read_text().split("\n")
    cases = inp.split("\n__ggml_vocab_test__\n")[:-1]
    assert len(cases) == 46 and len(out) >= len(cases)
    for text, line in zip(cases, out):
        want = [int(x) for x in line.split()]
        assert ids(t.encode(text)) == want, repr(text)
        assert hf.encode(text).ids == want, repr(text)
        assert ids(gpt2.encode(text)) == want, repr(text)  # from gpt2.tiktoken
    text = "\n%\n".join(fortunes)
    assert ids(t.encode(text)) == ids(gpt2.encode(text))
