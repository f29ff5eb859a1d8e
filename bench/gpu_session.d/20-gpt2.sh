# gpudev: GPT-2 124M training (batch 8 x 1024, tf32 and bf16) and KV-cache
# generation, lldl-gpt --device cuda against PyTorch eager and torch.compile
# on this GPU (the device's own torch), plus one lldl --cuda-graph row per
# precision (gptgraph); the script stops itself at its deadline.
part gpt2_gpu_vs_torch 250 $PYDEV bench/gpt2_gpu_vs_torch.py \
  --lldl-gpt $P/lldl-gpt --out "$OUT/gpt2_gpu_vs_torch.json" --deadline 235
