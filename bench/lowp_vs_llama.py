"""Helpers of bench/lowp_vs_llama.sh: lldl's generation per weight format, and
the side-by-side table against llama.cpp (not part of CI).

    python bench/lowp_vs_llama.py once DIR PRECISION     # one measurement (a child)
    python bench/lowp_vs_llama.py table RESULTS.jsonl     # the summary

once: cppapi.GPT.from_pretrained(DIR), set_inference_precision(PRECISION),
cppapi.measure_peak() (the study's triad, at OMP_NUM_THREADS, set by the
caller before this process started), a warm-up, then generate (32-token
prompt, 128 new tokens, greedy) and generate of 1 new token: decode tokens/s
= 127 / (t128 - t1), whole call = 128 / t128. Prints one JSON line.
"""
import json
import statistics
import sys
import time


def once(d, precision, prompt_len=32, new=128):
    import numpy as np
    import cppapi
    m = cppapi.GPT.from_pretrained(d)
    m.set_inference_precision(precision)
    triad = cppapi.measure_peak()["gbs"]
    p = np.random.default_rng(123).integers(0, 50257, size=(1, prompt_len)).astype(np.int32)
    m.generate(p[:, :4], 2, temperature=0.0)  # warm-up: first touches of the weights
    t0 = time.perf_counter()
    out = m.generate(p, new, temperature=0.0)
    full = time.perf_counter() - t0
    assert out.shape == (1, prompt_len + new), out.shape
    t0 = time.perf_counter()
    m.generate(p, 1, temperature=0.0)
    first = time.perf_counter() - t0
    print(json.dumps(dict(kind="lldl", precision=precision, isa=cppapi.cpu_isa(),
                          bytes=m.inference_weight_bytes(), triad_gbs=triad,
                          whole=new / full, decode=(new - 1) / (full - first))))


def table(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    med = statistics.median
    lldl = {}
    llama = {}
    for r in rows:
        if r["kind"] == "lldl":
            lldl.setdefault(r["precision"], []).append(r)
        else:
            llama.setdefault(r["precision"], []).append(r["tps"])
    triad = med([r["triad_gbs"] for rs in lldl.values() for r in rs])
    out = {"triad_gbs": triad, "formats": {}}
    print(f"triad bandwidth (cppapi.measure_peak, median of {sum(map(len, lldl.values()))} "
          f"processes): {triad:.1f} GB/s")
    print("| format | lldl decode tok/s [range] | whole call tok/s | MB weights/token | "
          "achieved GB/s | fraction of roofline | speed-up vs fp32 | llama.cpp tg128@d32 tok/s "
          "[range] | lldl / llama.cpp |")
    print("|---|---|---|---|---|---|---|---|---|")
    base = med([r["decode"] for r in lldl.get("fp32", [])]) if "fp32" in lldl else None
    for p in ["fp32", "bf16", "int8"]:
        if p not in lldl:
            continue
        dec = [r["decode"] for r in lldl[p]]
        whole = [r["whole"] for r in lldl[p]]
        b = lldl[p][0]["bytes"]
        gbs = med(dec) * b * 1e-9
        roof = triad * 1e9 / b  # tokens/s if every byte came at the triad's rate
        lc = llama.get(p, [])
        ratio = med(dec) / med(lc) if lc else None
        f = dict(decode=med(dec), decode_range=[min(dec), max(dec)], whole=med(whole),
                 bytes_per_token=b, achieved_gbs=gbs, roofline_tps=roof,
                 fraction_of_roofline=med(dec) / roof,
                 speedup_vs_fp32=med(dec) / base if base else None,
                 llama_cpp=med(lc) if lc else None,
                 llama_cpp_range=[min(lc), max(lc)] if lc else None, ratio_vs_llama_cpp=ratio)
        out["formats"][p] = f
        lcs = f"{med(lc):.1f} [{min(lc):.1f}-{max(lc):.1f}]" if lc else "-"
        sp = f"{f['speedup_vs_fp32']:.2f}x" if base else "-"
        rs = f"{ratio:.2f}x" if ratio else "-"
        print(f"| {p} | {f['decode']:.1f} [{min(dec):.1f}-{max(dec):.1f}] | {f['whole']:.1f} | "
              f"{b / 1e6:.1f} | {gbs:.1f} | {f['fraction_of_roofline']:.2f} | {sp} | {lcs} | {rs} |")
    with open(path.replace(".jsonl", ".json"), "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "once":
        once(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "table":
        table(sys.argv[2])
