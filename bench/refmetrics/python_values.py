#!/usr/bin/env python3
"""Seeded (answer, references) pairs and their reference-metric values by the Python
implementations Podium follows: sacrebleu (BLEU, chrF, chrF++), rouge-score (ROUGE-1/2/L,
no stemming) and Levenshtein / rapidfuzz (similarity).

    python_values.py --pairs 300 --seed 14 --out FIXTURE.jsonl

Each line but the last is {"hyp", "refs", "python": {metric: value, ...}}; the last is
{"corpus": {metric: value}} over all pairs (every reference of every pair, sacrebleu's
reference streams padded with None where a pair has fewer references).
"""
import argparse
import json
import random
import sys

import Levenshtein
import rapidfuzz
import rouge_score
import sacrebleu
from rapidfuzz.distance import Levenshtein as RfLevenshtein
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

WORDS = (
    "the cat sat on mat dog a an is was refund order ticket please thanks "
    "customer support delivery late price $1,000.50 3.14 2-3 1,2,3 42 -7 e-mail "
    "don't it's U.S.A. etc. (note) [x] {y} <tag> &amp; &lt; &quot; a/b "
    "naïve café Straße ΣΟΦΟΣ σοφός İstanbul 日本語 中文字 😀 ﬁne Ⅻ ½ "
    "hello, world. yes! no? well... -- ``quote'' <skipped>"
).split()
SPACES = [" ", " ", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\x1c", "-\n"]


def sentence(rng, n):
    out = []
    for i in range(n):
        if i:
            out.append(rng.choice(SPACES))
        out.append(rng.choice(WORDS))
    return "".join(out)


def perturb(rng, text):
    words = text.split(" ")
    ops = rng.randint(0, 4)
    for _ in range(ops):
        op = rng.random()
        if op < 0.3 and words:
            del words[rng.randrange(len(words))]
        elif op < 0.6:
            words.insert(rng.randint(0, len(words)), rng.choice(WORDS))
        elif words:
            i = rng.randrange(len(words))
            words[i] = words[i].upper() if rng.random() < 0.5 else rng.choice(WORDS)
    return " ".join(words)


def pairs(n, seed):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        n_refs = rng.choice([1, 1, 1, 2, 3])
        refs = [sentence(rng, rng.randint(0, 25)) for _ in range(n_refs)]
        kind = rng.random()
        if kind < 0.05:
            hyp = ""
        elif kind < 0.1:
            hyp = refs[0]
        elif kind < 0.75:
            hyp = perturb(rng, refs[rng.randrange(n_refs)])
        else:
            hyp = sentence(rng, rng.randint(0, 30))
        if rng.random() < 0.05:
            refs[0] = ""
        out.append({"hyp": hyp, "refs": refs})
    return out


METRICS = {
    "bleu": BLEU(),
    "bleu_lc_none": BLEU(lowercase=True, tokenize="none"),
    "chrf": CHRF(),
    "chrf_pp": CHRF(word_order=2),
    "chrf_lc_ws": CHRF(lowercase=True, whitespace=True),
}
SENTENCE = {
    "bleu": BLEU(effective_order=True),
    "bleu_lc_none": BLEU(lowercase=True, tokenize="none", effective_order=True),
    "chrf": CHRF(),
    "chrf_pp": CHRF(word_order=2),
    "chrf_lc_ws": CHRF(lowercase=True, whitespace=True),
}


def values(pair, scorer):
    hyp, refs = pair["hyp"], pair["refs"]
    v = {}
    for name, metric in METRICS.items():
        stats = metric._extract_corpus_statistics([hyp], [[r] for r in refs])[0]
        v[name + "_stats"] = [float(x) for x in stats]
        v[name] = SENTENCE[name].sentence_score(hyp, refs).score
    scores = scorer.score_multi(refs, hyp)
    for name in ("rouge1", "rouge2", "rougeL"):
        v[name] = scores[name].fmeasure
    v["similarity_ratio"] = max(Levenshtein.ratio(hyp, r) for r in refs)
    v["similarity_levenshtein"] = max(RfLevenshtein.normalized_similarity(hyp, r) for r in refs)
    return v


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    data = pairs(args.pairs, args.seed)
    max_refs = max(len(p["refs"]) for p in data)
    streams = [[p["refs"][k] if k < len(p["refs"]) else None for p in data] for k in range(max_refs)]
    hyps = [p["hyp"] for p in data]
    corpus = {name: metric.corpus_score(hyps, streams).score for name, metric in METRICS.items()}
    versions = {
        "python": sys.version.split()[0],
        "sacrebleu": sacrebleu.__version__,
        "rouge_score": getattr(rouge_score, "__version__", "0.1.2"),
        "rapidfuzz": rapidfuzz.__version__,
        "Levenshtein": Levenshtein.__version__,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        for pair in data:
            f.write(json.dumps({**pair, "python": values(pair, scorer)}, ensure_ascii=False) + "\n")
        f.write(json.dumps({"corpus": corpus, "versions": versions, "seed": args.seed}) + "\n")
    print(f"{len(data)} pairs, corpus {corpus}, versions {versions}", file=sys.stderr)


if __name__ == "__main__":
    main()
