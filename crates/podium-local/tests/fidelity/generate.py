"""Tiny random-weight GGUF models of every architecture Podium runs, and llama.cpp's
per-token log-probs on them, as fixtures for `src/fidelity_tests.rs`.

Writes, next to this file:
  models/<name>.f32.gguf    weights in f32 (hidden 32, 2 layers)
  models/<name>.q8_0.gguf   the same weights quantized by llama.cpp (LLAMA_FTYPE_MOSTLY_Q8_0)
  models/<name>.q4_k.gguf   for the families new in issue 15: a wider model (hidden 256,
                            1 layer: k-quant rows are 256 values) quantized by llama.cpp
                            (LLAMA_FTYPE_MOSTLY_Q4_K_M: Q4_K, with Q6_K for some tensors)
  llamacpp.json             for each file and each fixed token sequence: llama.cpp's
                            log-prob of every next token and its top 5 (ids, log-probs)

Everything is seeded: running it again writes the same bytes (the GGUF writer and
llama.cpp's quantizer are deterministic), so the fixtures can be regenerated and diffed.

usage (a venv with `gguf` and llama-cpp-python 0.3.36 on the llama.cpp that
bench/local/build_llamacpp.sh builds):
  python3 -m venv /tmp/venv && /tmp/venv/bin/pip install gguf==0.19.0 numpy
  CMAKE_ARGS="-DLLAMA_BUILD=OFF" /tmp/venv/bin/pip install llama-cpp-python==0.3.36
  LLAMA_CPP_LIB_PATH=~/.cache/podium/llama.cpp-build/bin \
      /tmp/venv/bin/python crates/podium-local/tests/fidelity/generate.py
"""
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import gguf
import llama_cpp

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
CONTEXT = 128
# Sequences of token ids (not text: tokenizers cannot matter), fixed by seed.
N_SEQUENCES = 3
SEQUENCE_LEN = 40
TOP_K = 5


def byte_level_vocab():
    """A GPT-2 style byte-level BPE vocabulary: the 256 byte symbols, merges that spell
    some common English words, and <|endoftext|>."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_symbols = [chr(c) for c in cs]
    tokens = list(byte_symbols)
    merges = []
    words = ["the", "and", "that", "with", "model", "token", "ing", "er", "on", "in"]
    for word in words:
        for prefix in ("\u0120", ""):  # "Ġ" is the byte-level symbol of a space
            symbols = list(prefix + word)
            current = symbols[0]
            for sym in symbols[1:]:
                merged = current + sym
                if merged not in tokens:
                    merges.append(f"{current} {sym}")
                    tokens.append(merged)
                current = merged
    tokens.append("<|endoftext|>")
    types = [gguf.TokenType.NORMAL] * (len(tokens) - 1) + [gguf.TokenType.CONTROL]
    return tokens, types, merges


TOKENS, TOKEN_TYPES, MERGES = byte_level_vocab()
VOCAB = len(TOKENS)


def llama3_rope_factors(base, dim, factor, low, high, old_context):
    """Llama 3.1's RoPE frequency factors, as llama.cpp's converter computes them."""
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    low_wavelen, high_wavelen = old_context / low, old_context / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_context / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


# name -> architecture and options; `wide` gives the Q4_K model's shape.
SPECS = {
    # Controls: the two families Podium ran before.
    "llama": dict(arch="llama", tied=True),
    "gemma3": dict(arch="gemma3", tied=True, qk_norm=True, post_norms=True,
                   sliding_window=6, swa_pattern=2, rope_base=1e6),
    # Llama 3.x: untied head, RoPE frequency factors (rope_freqs.weight) with an original
    # context short enough that all three bands (kept, smoothed, scaled) occur in 8 dims.
    "llama3": dict(arch="llama", tied=False, q4k=True,
                   llama3_rope=dict(factor=8.0, low=1.0, high=4.0, old_context=64)),
    # Llama with the optional attention-output and feed-forward biases llama.cpp loads.
    "llama_biases": dict(arch="llama", tied=True, out_ffn_bias=True),
    "qwen2": dict(arch="qwen2", tied=True, q4k=True, qkv_bias=True, rope_base=1e6, eps=1e-6),
    # Qwen 3: head size 16 with 4 heads in a hidden size of 32 (like Qwen3-0.6B, whose
    # heads do not divide the hidden size), q/k norms, untied head.
    "qwen3": dict(arch="qwen3", tied=False, q4k=True, qk_norm=True, head_dim=16, rope_base=1e6,
                  eps=1e-6),
    # Phi-3 / Phi-4-mini: fused QKV and gate/up, 3/4 of each head rotated, a sliding
    # window in the metadata that llama.cpp disables.
    "phi3": dict(arch="phi3", tied=False, q4k=True, fused=True, partial_rope=0.75, phi3_swa=2047),
    # Phi-3 long-context RoPE (Phi-3.5-mini, Phi-4-mini): long and short factors and an
    # attention factor. llama.cpp takes the long factors when its context (256 here: it
    # pads n_ctx 128 up) exceeds the original context, else the short ones; Podium
    # decides on its context (128 here). Original context 32: long; 1024: short.
    "phi3_long": dict(arch="phi3", tied=False, fused=True, partial_rope=0.75, f32_only=True,
                      longrope=dict(original_context=32, attn_factor=1.19)),
    "phi3_short": dict(arch="phi3", tied=False, fused=True, partial_rope=0.75, f32_only=True,
                       longrope=dict(original_context=1024, attn_factor=1.19)),
}


def write_model(path, name, spec, wide, seed):
    rng = np.random.default_rng(seed)
    arch = spec["arch"]
    hidden = 256 if wide else 32
    n_layers = 1 if wide else 2
    ffn = 256 if wide else 64
    n_heads, n_kv = 4, 2
    head_dim = spec.get("head_dim", hidden // n_heads)
    if wide and "head_dim" in spec:
        head_dim = 128
    q_dim, kv_dim = n_heads * head_dim, n_kv * head_dim
    rope_dim = int(head_dim * spec.get("partial_rope", 1.0))
    rope_base = spec.get("rope_base", 1e4)

    w = gguf.GGUFWriter(str(path), arch)
    # Not the family's name: llama.cpp's vocabulary loader keys special-token rules on
    # `general.name` (e.g. "phi3" expects Phi-3's special tokens).
    w.add_name("podium tiny fixture")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(hidden)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(n_heads)
    w.add_head_count_kv(n_kv)
    if head_dim != hidden // n_heads:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_layer_norm_rms_eps(spec.get("eps", 1e-5))
    w.add_rope_freq_base(rope_base)
    if rope_dim != head_dim or arch in ("llama", "phi3"):
        w.add_rope_dimension_count(rope_dim)
    if "sliding_window" in spec:
        w.add_sliding_window(spec["sliding_window"])
        w.add_uint32(f"{arch}.attention.sliding_window_pattern", spec["swa_pattern"])
    if "phi3_swa" in spec:
        w.add_sliding_window(spec["phi3_swa"])
        w.add_rope_scaling_orig_ctx_len(CONTEXT)
    if "longrope" in spec:
        w.add_rope_scaling_orig_ctx_len(spec["longrope"]["original_context"])
        w.add_rope_scaling_attn_factors(spec["longrope"]["attn_factor"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(TOKENS)
    w.add_token_types(TOKEN_TYPES)
    w.add_token_merges(MERGES)
    w.add_eos_token_id(VOCAB - 1)
    w.add_bos_token_id(VOCAB - 1)
    w.add_add_bos_token(False)

    def matrix(rows, cols):
        # Uniform with the variance of a unit-gain init, a bit larger so the logits spread.
        return (rng.uniform(-1.0, 1.0, size=(rows, cols)) * 1.7 / math.sqrt(cols)).astype(np.float32)

    def norm(n):
        return rng.uniform(0.8, 1.2, size=n).astype(np.float32)

    def bias(n):
        return rng.uniform(-0.5, 0.5, size=n).astype(np.float32)

    w.add_tensor("token_embd.weight", matrix(VOCAB, hidden))
    if not spec["tied"]:
        w.add_tensor("output.weight", matrix(VOCAB, hidden))
    w.add_tensor("output_norm.weight", norm(hidden))
    if "longrope" in spec:
        w.add_tensor("rope_factors_long.weight", rng.uniform(1.0, 8.0, size=rope_dim // 2).astype(np.float32))
        w.add_tensor("rope_factors_short.weight", rng.uniform(0.8, 1.5, size=rope_dim // 2).astype(np.float32))
    if "llama3_rope" in spec:
        r = spec["llama3_rope"]
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(rope_base, rope_dim, r["factor"], r["low"], r["high"], r["old_context"]))
    for il in range(n_layers):
        def t(suffix, data):
            w.add_tensor(f"blk.{il}.{suffix}", data)
        t("attn_norm.weight", norm(hidden))
        if spec.get("fused"):
            t("attn_qkv.weight", matrix(q_dim + 2 * kv_dim, hidden))
        else:
            t("attn_q.weight", matrix(q_dim, hidden))
            t("attn_k.weight", matrix(kv_dim, hidden))
            t("attn_v.weight", matrix(kv_dim, hidden))
        if spec.get("qkv_bias"):
            t("attn_q.bias", bias(q_dim))
            t("attn_k.bias", bias(kv_dim))
            t("attn_v.bias", bias(kv_dim))
        t("attn_output.weight", matrix(hidden, q_dim))
        if spec.get("qk_norm"):
            t("attn_q_norm.weight", norm(head_dim))
            t("attn_k_norm.weight", norm(head_dim))
        if spec.get("post_norms"):
            t("post_attention_norm.weight", norm(hidden))
            t("post_ffw_norm.weight", norm(hidden))
        t("ffn_norm.weight", norm(hidden))
        if spec.get("fused"):
            t("ffn_up.weight", matrix(2 * ffn, hidden))
        else:
            t("ffn_gate.weight", matrix(ffn, hidden))
            t("ffn_up.weight", matrix(ffn, hidden))
        t("ffn_down.weight", matrix(hidden, ffn))
        if spec.get("out_ffn_bias"):
            t("attn_output.bias", bias(hidden))
            t("ffn_gate.bias", bias(ffn))
            t("ffn_up.bias", bias(ffn))
            t("ffn_down.bias", bias(hidden))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def quantize(src, dst, ftype):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 1
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if rc != 0:
        sys.exit(f"quantizing {src} failed: {rc}")


def sequences():
    rng = np.random.default_rng(1234)
    seqs = []
    for _ in range(N_SEQUENCES):
        seqs.append([int(x) for x in rng.integers(0, VOCAB - 1, size=SEQUENCE_LEN)])
    return seqs


def llamacpp_logprobs(path, seqs):
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=CONTEXT, n_batch=CONTEXT, n_ubatch=CONTEXT,
                          n_threads=1, n_threads_batch=1, logits_all=True, verbose=False,
                          flash_attn=False, type_k=0, type_v=0)  # f32 key/value cache
    out = []
    for seq in seqs:
        llm.reset()
        llm.eval(seq)
        logits = np.asarray(llm.scores[: len(seq)], dtype=np.float64)
        logprobs, top_ids, top_logprobs = [], [], []
        for i in range(len(seq) - 1):
            row = logits[i]
            m = row.max()
            lp = row - m - math.log(np.exp(row - m).sum())
            logprobs.append(round(float(lp[seq[i + 1]]), 7))
            top = np.argsort(-lp, kind="stable")[:TOP_K]
            top_ids.append([int(t) for t in top])
            top_logprobs.append([round(float(lp[t]), 7) for t in top])
        out.append(dict(tokens=seq, logprobs=logprobs, top_ids=top_ids, top_logprobs=top_logprobs))
    del llm
    return out


def main():
    MODELS.mkdir(exist_ok=True)
    scratch = HERE / "scratch"
    scratch.mkdir(exist_ok=True)
    seqs = sequences()
    fixtures = dict(
        llama_cpp_python=llama_cpp.__version__,
        context=CONTEXT,
        files={},
    )
    for i, (name, spec) in enumerate(SPECS.items()):
        f32 = MODELS / f"{name}.f32.gguf"
        write_model(f32, name, spec, wide=False, seed=100 + i)
        paths = [f32]
        if not spec.get("f32_only"):
            q8 = MODELS / f"{name}.q8_0.gguf"
            quantize(f32, q8, llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0)
            paths.append(q8)
        if spec.get("q4k"):
            wide = scratch / f"{name}.wide.f32.gguf"
            write_model(wide, name, spec, wide=True, seed=200 + i)
            q4k = MODELS / f"{name}.q4_k.gguf"
            quantize(wide, q4k, llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M)
            wide.unlink()
            paths.append(q4k)
        for path in paths:
            fixtures["files"][path.name] = llamacpp_logprobs(path, seqs)
            print(f"{path.name}: {path.stat().st_size} bytes", flush=True)
    scratch.rmdir()
    with open(HERE / "llamacpp.json", "w") as f:
        json.dump(fixtures, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
