"""Text data and tokenizers from Python: fortunes, split_corpus, ByteTokenizer,
CharTokenizer, BpeTokenizer and TokenWindows."""
import os
import random

import numpy as np
import pytest

import cppapi

HAVE_FORTUNES = os.path.isdir(cppapi.FORTUNES_DIR)
needs_fortunes = pytest.mark.skipif(not HAVE_FORTUNES, reason="fortunes not installed")


@pytest.fixture(scope="module")
def fortunes():
    return cppapi.load_fortunes()


@pytest.fixture(scope="module")
def split(fortunes):
    return cppapi.split_corpus(fortunes, 0.1, 1)


def random_bytes(n, seed):
    return random.Random(seed).randbytes(n)


@needs_fortunes
def test_fortunes_are_many_str_entries_without_separator_lines(fortunes):
    assert len(fortunes) > 1000
    assert all(isinstance(e, str) and e for e in fortunes)
    assert not any("%" in e.splitlines() for e in fortunes)
    assert cppapi.load_fortunes(dir=cppapi.FORTUNES_DIR) == fortunes


def test_load_fortunes_reads_plain_files_of_a_dir(tmp_path):
    (tmp_path / "b").write_text("two\n%\n")
    (tmp_path / "a").write_text("one\n%\nline 1\nline 2\n%\n")
    (tmp_path / "a.dat").write_bytes(b"\0\0%\n")
    (tmp_path / "off").mkdir()
    (tmp_path / "off" / "x").write_text("rude\n%\n")
    assert cppapi.load_fortunes(str(tmp_path)) == ["one", "line 1\nline 2", "two"]


def test_load_fortunes_missing_dir_names_the_path(tmp_path):
    with pytest.raises(ValueError, match="nope"):
        cppapi.load_fortunes(str(tmp_path / "nope"))


@needs_fortunes
def test_split_corpus_covers_every_entry_once(fortunes, split):
    train, val = split
    parts = train.split("\n%\n")[:-1] + val.split("\n%\n")[:-1]
    assert sorted(parts) == sorted(fortunes)
    assert len(val.split("\n%\n")) - 1 == int(np.ceil(0.1 * len(fortunes)))
    assert cppapi.split_corpus(fortunes, 0.1, 1) == split


def test_split_corpus_errors():
    with pytest.raises(ValueError, match="empty corpus"):
        cppapi.split_corpus([], 0.1, 0)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        cppapi.split_corpus(["a", "b"], 1.0, 0)


def test_byte_tokenizer_round_trips_str_and_bytes():
    t = cppapi.ByteTokenizer()
    assert t.vocab_size() == 256
    ids = t.encode("héllo")
    assert isinstance(ids, np.ndarray) and ids.dtype == np.int32
    assert list(ids) == list("héllo".encode())
    assert t.decode(ids) == "héllo"
    assert t.decode(list(ids)) == "héllo"
    raw = random_bytes(3000, 1) + b"\0\xff\xc3("
    assert t.decode(t.encode(raw)) == raw  # not UTF-8: bytes come back
    assert t.decode_bytes(t.encode("abc")) == b"abc"
    with pytest.raises(ValueError, match="id 256 at position 1"):
        t.decode([1, 256])


def test_decode_rejects_non_integer_ids():
    t = cppapi.ByteTokenizer()
    with pytest.raises(TypeError, match="integers"):
        t.decode(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="position 1"):
        t.decode([65, 66.0])
    with pytest.raises(TypeError):
        t.decode("abc")
    with pytest.raises(ValueError, match="out of range"):
        t.decode([2**40])
    with pytest.raises(ValueError, match="out of range"):
        t.decode(np.array([2**64 - 1], dtype=np.uint64))
    assert t.decode(np.array([104, 105], dtype=np.uint8)) == "hi"
    with pytest.raises(TypeError, match="str or bytes"):
        t.encode(5)


def test_char_tokenizer_vocab_errors_and_save_load(tmp_path):
    t = cppapi.CharTokenizer(b"banana\0")
    assert t.vocab == b"\0abn"
    assert t.vocab_size() == 4
    assert list(t.encode("nab")) == [3, 1, 2]
    with pytest.raises(ValueError, match=r"'z'.*position 2"):
        t.encode("baz")
    with pytest.raises(ValueError, match="empty corpus"):
        cppapi.CharTokenizer("")
    p = str(tmp_path / "c.txt")
    t.save(p)
    u = cppapi.CharTokenizer.load(p)
    assert u.vocab == t.vocab
    (tmp_path / "c.txt").write_text("garbage\n")
    with pytest.raises(ValueError, match="c.txt"):
        cppapi.CharTokenizer.load(p)


@needs_fortunes
def test_char_tokenizer_on_fortunes(split):
    train, val = split
    t = cppapi.CharTokenizer(train)
    assert t.decode(t.encode(train)) == train
    assert t.vocab_size() == len(set(train.encode()))


@needs_fortunes
def test_bpe_compresses_and_round_trips(split, tmp_path):
    train, val = split
    t = cppapi.BpeTokenizer.train(train, 512)
    assert t.vocab_size() == 512
    ids = t.encode(val)
    assert ids.dtype == np.int32 and ids.max() < 512
    assert t.decode(ids) == val
    assert len(ids) / len(val.encode()) < 0.56
    for seed in range(5):
        raw = random_bytes(500 * seed, seed)
        assert t.decode_bytes(t.encode(raw)) == raw
    a, b = b"", b"\0\x80\xff"
    assert t.decode_bytes(t.encode(a)) == a and t.decode_bytes(t.encode(b)) == b
    a, b = int(t.merges[0][0]), int(t.merges[0][1])
    assert t.token_bytes(256) == t.token_bytes(a) + t.token_bytes(b)
    p = str(tmp_path / "m.bpe")
    t.save(p)
    u = cppapi.BpeTokenizer.load(p)
    assert u.merges == t.merges
    assert np.array_equal(u.encode(val[:5000]), t.encode(val[:5000]))


def test_bpe_errors(tmp_path):
    with pytest.raises(ValueError, match="vocab_size 100"):
        cppapi.BpeTokenizer.train("abc", 100)
    with pytest.raises(ValueError, match="empty corpus"):
        cppapi.BpeTokenizer.train(b"", 300)
    t = cppapi.BpeTokenizer.train("abab abab", 300)
    p = tmp_path / "m.bpe"
    t.save(str(p))
    p.write_bytes(p.read_bytes()[:-3])
    with pytest.raises(ValueError, match="m.bpe"):
        cppapi.BpeTokenizer.load(str(p))
    with pytest.raises(ValueError, match="out of range"):
        t.decode([t.vocab_size()])


def test_token_windows_shift_by_one_and_are_seeded():
    tokens = np.arange(50, dtype=np.int32)
    w = cppapi.TokenWindows(tokens, seed=3)
    assert len(w) == 50
    x, y = w.sample(8, 10)
    assert x.shape == (8, 10) and y.shape == (8, 10) and x.dtype == np.int32
    assert np.array_equal(y, x + 1)
    assert np.all(np.diff(x, axis=1) == 1)
    assert x[:, 0].min() >= 0 and x[:, 0].max() <= 50 - 10 - 1
    x2, _ = cppapi.TokenWindows(list(range(50)), seed=3).sample(8, 10)
    assert np.array_equal(x, x2)
    with pytest.raises(ValueError, match="50 tokens"):
        w.sample(2, 50)
