"""HellaSwag as llama.cpp's `llama-perplexity --hellaswag` scores it, through
llama-cpp-python (llama.cpp built from source), on the FIRST N tasks of the
6-lines-per-task file, so Podium's `examples/hellaswag` can be compared task
for task. Score of an ending = mean log-prob of its tokens after the prefix
the four sequences share (acc_norm_tokens); prints accuracy and wall time.

usage: python hellaswag_llamacpp.py MODEL.gguf DATA.txt N THREADS
"""
import math
import sys
import time

import llama_cpp
import numpy as np

model, data, n_tasks, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
llm = llama_cpp.Llama(model_path=model, n_ctx=512, n_batch=512, n_threads=threads,
                      n_threads_batch=threads, logits_all=True, verbose=False)
lines = open(data, encoding="utf-8").read().split("\n")
start = time.monotonic()
correct = 0
for t in range(n_tasks):
    ctx, gold, endings = lines[6 * t], int(lines[6 * t + 1]), lines[6 * t + 2: 6 * t + 6]
    seqs = [llm.tokenize((ctx + " " + e).encode("utf-8"), add_bos=True, special=False) for e in endings]
    common = 0
    while all(len(s) > common for s in seqs) and len({s[common] for s in seqs}) == 1:
        common += 1
    scores = []
    for seq in seqs:
        llm.reset()
        llm.eval(seq)
        logits = np.asarray(llm.scores[: len(seq)], dtype=np.float64)
        total = 0.0
        for i in range(max(common, 1), len(seq)):
            row = logits[i - 1]
            m = row.max()
            total += row[seq[i]] - m - math.log(np.exp(row - m).sum())
        scores.append(total / max(1, len(seq) - max(common, 1)))
    correct += int(int(np.argmax(scores)) == gold)
elapsed = time.monotonic() - start
acc = correct / n_tasks
se = math.sqrt(acc * (1 - acc) / (n_tasks - 1))
print(f"llama.cpp (llama-cpp-python {llama_cpp.__version__}): {n_tasks} tasks, acc_norm_tokens {100*acc:.2f}% ± {100*se:.2f}, wall {elapsed:.1f} s")
