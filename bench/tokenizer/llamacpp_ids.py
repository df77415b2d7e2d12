"""llama.cpp's token ids for many seeded texts on every `ggml-vocab-*.gguf` in a folder,
for `cargo run -p podium-tokenizer --example llamacpp_crosscheck` (docs/CROSSCHECK.md).

usage: python llamacpp_ids.py VOCAB_DIR OUT.json [--seed 15] [--random 400] [--special]

It needs numpy and llama-cpp-python 0.3.36's Python package: either installed, or the
`llama_cpp/` folder of its sdist on PYTHONPATH with LLAMA_CPP_LIB_PATH pointing at a
built libllama.so (bench/local/build_llamacpp.sh builds one). Texts are the fragments
below, then seeded random concatenations of 2 to 12 of them, then long runs of one
character; each is tokenized with `add_bos=False, special=False`, as llama.cpp's
test-tokenizer-0 does (`--special`: `special=True`, control-token text parsed as control
tokens, as for a rendered chat prompt).
"""

import argparse
import glob
import json
import os
import random
import sys

import llama_cpp

FRAGMENTS = [
    "Hello", "world", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n ", "\u00a0", "\u3000",
    "\u2009", "\u200b", "\u2028", "\u0085",
    "it's", "I'M", "we'Ve", "they'll", "'d", "'RE", "'''", "don't",
    "0", "7", "12", "123", "1234", "12345", "3.14", "1,000,000", "٣٤٥", "²", "Ⅻ", "½", "১২৩",
    "é", "É", "résumé", "naïve", "Ærøskøbing", "ß", "İstanbul", "ǅ", "ﬁ", "ｆｕｌｌ", "Ｗｉｄｅ",
    "e\u0301", "a\u0308\u0304", "\u0301", "ก่", "क्षि", "ਗੁਰਮੁਖੀ", "مرحبا", "שלום", "Привет", "Ελληνικά",
    "ἀρχή", "日本語", "我想在apple工作", "한국어", "가나다", "ひらがな", "カタカナ", "ࠀࠁ", "龥", "𠀋", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "🙂", "🦙", "😶‍🌫️", "👍🏽", "🇫🇷", "✅", "©", "™", "°C", "€", "$", "£",
    ",", ".", "...", "!", "?", "!!", "?!", "-", "--", "---", "==", "=>", "<=", "->", "::", "()", "[]",
    "{}", "<>", "/*", "*/", "//", "#", "@", "%", "^", "&", "*", "_", "__init__", "~", "`", "```", "|",
    "\\", "\"", "'", "《", "》", "「", "」", "，", "。", "！", "？", "：", "；", "、", "…", "—", "–", "‘", "’",
    "“", "”", "¿", "¡", "·",
    "def f(x):\n    return x", "int main() { return 0; }", "<html><body>", "{\"a\": [1, 2]}",
    "$$\\frac{a}{b}$$", "x_1^2", "foo_bar-baz", "CamelCaseWord", "UPPER", "lower", "MiXeD",
    "ᚠᛇᚻ", "ꙮ", "Ꭰ", "ǉ", "µ", "ſ", "\u212a", "\u2126", "ℌ", "ⅅ", "ﬀ", "\u00ad", "\ufeff", "\x00", "\x07",
    "\x1b[0m", "\u007f", "\ue000", "\U0010ffff", "\ufffd",
    "[UNK]", "[CLS]", "<s>", "</s>", "<|endoftext|>", "<|im_start|>", "<bos>", "▁", "▁▁", "<0x41>", "##ing",
    "<|im_end|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<｜fim▁begin｜>", "<｜end▁of▁sentence｜>",
    "<start_of_turn>", "<end_of_turn>", "<|turn>", "<turn|>", "[SEP]", "[MASK]", "<pad>", "<unk>", "<|end|>",
    "<|user|>", "<|assistant|>", "<|eot_id|>", "<|begin_of_text|>", "<|START_OF_TURN_TOKEN|>", ">>ABSTRACT<<",
]


def texts(seed, n_random):
    rng = random.Random(seed)
    out = list(FRAGMENTS)
    for _ in range(n_random):
        out.append("".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(2, 12))))
    for c in [" ", "\n", "3", "a", "é", "\t", "!"]:
        out.extend(c * n for n in (5, 17, 64))
    return list(dict.fromkeys(out))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("vocab_dir")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--random", type=int, default=400)
    parser.add_argument("--special", action="store_true")
    args = parser.parse_args()
    all_texts = texts(args.seed, args.random)
    ids = {}
    for path in sorted(glob.glob(os.path.join(args.vocab_dir, "ggml-vocab-*.gguf"))):
        name = os.path.basename(path)[len("ggml-vocab-"):-len(".gguf")]
        try:
            model = llama_cpp.Llama(path, vocab_only=True, verbose=False)
        except Exception as e:  # llama.cpp cannot load it: nothing to compare
            print(f"{name}: llama.cpp cannot load it: {e}", file=sys.stderr)
            continue
        ids[name] = [
            model.tokenize(t.encode(), add_bos=False, special=args.special) for t in all_texts
        ]
        print(f"{name}: {len(all_texts)} texts", file=sys.stderr)
    with open(args.out, "w") as f:
        json.dump({"texts": all_texts, "special": args.special, "ids": ids}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
