"""Append extra tricky strings and llama.cpp's ids for them to reference_ids.json.

Run with llama-cpp-python 0.3.36 (see SOURCE.md):
    python extend_reference.py MODEL_DIR
Ids are `Llama(vocab_only=True).tokenize(text.encode(), add_bos=False, special=True)`.
Strings already in the file are skipped, so running it twice changes nothing.
"""
import json
import pathlib
import sys

import llama_cpp

EXTRA = [
    "",
    " ",
    "a",
    "\n",
    "\r\n\r\n",
    "Hello\n\n\nWorld",
    "tab\tseparated\tvalues",
    "   indented by three",
    "multiple     spaces    between",
    "trailing newline\n",
    "UPPER lower MiXeD",
    "I'M YOU'RE it'S they'Ve we'D",
    "'s 't 're at the start",
    "e-mail: someone@example.com, url: https://example.org/a?b=c&d=e",
    "1234567890 0.000001 -42 +7 1e-9 3,14",
    "١٢٣ ٤٥٦ Ⅻ ½ ²³",
    "naïve façade coöperate résumé",
    "Привет, мир! Как дела?",
    "你好，世界。这是一个测试。",
    "こんにちは世界 カタカナ ひらがな",
    "안녕하세요 세계",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "emoji 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "zero\u200bwidth\u200djoiner",
    "non\u00a0breaking\u2009thin\u3000ideographic",
    "ﬁ ligature and ｆｕｌｌｗｉｄｔｈ",
    "```python\nfor i in range(10):\n    print(i)\n```",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "<div class=\"x\">&amp; &lt;tag&gt;</div>",
    "A) first B) second C) third D) fourth",
    "Question: What is 2+2?\nAnswer: 4",
    "....!!!???---___***",
    "$$\\frac{a}{b} = \\sqrt{c^2}$$",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "<|endoftext|><|endoftext|>",
    "<bos>text<eos>",
    "<|im_start|",
    "<unk> <pad> <mask>",
    "▁already▁spaced",
    "<0x41> looks like a byte token",
    "\x00\x01\x07 control chars",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
]

FILES = {
    "smollm2-135m-instruct": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3-270m": "gemma-3-270m-q4_k_m.gguf",
}


def main() -> None:
    model_dir = pathlib.Path(sys.argv[1])
    path = pathlib.Path(__file__).with_name("reference_ids.json")
    data = json.loads(path.read_text())
    for key, file in FILES.items():
        llm = llama_cpp.Llama(str(model_dir / file), vocab_only=True, verbose=False)
        entry = data[key]
        for text in EXTRA:
            if text in entry["texts"]:
                continue
            ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            entry["texts"].append(text)
            entry["ids"].append(list(ids))
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
