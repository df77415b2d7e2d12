"""IFEval cross-check: lm-evaluation-harness's own checkers (lm_eval/tasks/ifeval,
v0.4.9) against Podium's verdicts on the same responses.

  crosscheck.py samples OUT/samples_ifeval.jsonl [OUT/results.json]
      responses a `podium eval -t ifeval --output OUT` run scored (mock backend or a
      model): compares every per-instruction verdict (strict and loose) and the four
      aggregates (recomputed by lm-eval's utils.process_results/agg_inst_level_acc,
      and as Podium's results.json reports them).

  crosscheck.py synthetic-write FILE.jsonl
      writes synthetic responses for all 541 IFEval prompts (six per prompt, built
      from each prompt's own instruction arguments so that most instructions are
      followed, and then broken in several ways).
  crosscheck.py synthetic-compare FILE.jsonl PODIUM_VERDICTS.jsonl
      compares Podium's verdicts on them (from `cargo run -p podium-tasks --example
      ifeval_verdicts < FILE.jsonl`, the code path Task::score uses) with lm-eval's.

Prints the agreement and lists every disagreement. Exit status 1 when the
agreement is below 99.5% of the verdicts lm-eval does not draw at random (it
draws a random letter for docs 19 and 22; those are counted and listed apart)
or an aggregate differs by more than 0.2 points.
"""

import json
import os
import random
import sys

import lmeval_ifeval as lm

DATA = os.path.join(lm.REPO, "tasks", "ifeval", "data", "input_data.jsonl")
METRICS = ["prompt_level_strict_acc", "inst_level_strict_acc",
           "prompt_level_loose_acc", "inst_level_loose_acc"]


def aggregates(rows):
    """lm-eval's four metrics from per-doc verdict lists [(strict, loose)]."""
    p_strict = [all(s) for s, _ in rows]
    p_loose = [all(lo) for _, lo in rows]
    flat_strict = [x for s, _ in rows for x in s]
    flat_loose = [x for _, lo in rows for x in lo]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {
        "prompt_level_strict_acc": mean(p_strict),
        "inst_level_strict_acc": lm.utils.agg_inst_level_acc([s for s, _ in rows]),
        "prompt_level_loose_acc": mean(p_loose),
        "inst_level_loose_acc": lm.utils.agg_inst_level_acc([lo for _, lo in rows]),
    } if rows else {}


def compare(items, podium_results=None):
    """items: (label, doc, response, podium_strict, podium_loose). Returns ok."""
    n = agree = 0
    n_random = agree_random = 0
    disagreements = []
    lm_rows, podium_rows = [], []
    for label, doc, response, p_strict, p_loose in items:
        # lm-eval draws from Python's global generator for a bad `letter`
        # (docs 19 and 22); seed per doc so that reruns give the same lists.
        random.seed(0)
        l_strict, l_loose = lm.verdicts(doc, response)
        lm_rows.append((l_strict, l_loose))
        podium_rows.append((p_strict, p_loose))
        for i, iid in enumerate(doc["instruction_id_list"]):
            random_draw = drawn_at_random(iid, doc["kwargs"][i])
            for mode, p, q in (("strict", p_strict[i], l_strict[i]), ("loose", p_loose[i], l_loose[i])):
                n += 1
                n_random += random_draw
                if p == q:
                    agree += 1
                    agree_random += random_draw
                else:
                    disagreements.append((label, iid, mode, p, q, doc["kwargs"][i], response))
    print(f"verdicts: {agree}/{n} agree ({100 * agree / max(n, 1):.3f}%), "
          f"{len(items)} responses, {n // 2} instructions x (strict, loose)")
    n_fixed, agree_fixed = n - n_random, agree - agree_random
    print(f"verdicts lm-eval does not draw at random: {agree_fixed}/{n_fixed} agree "
          f"({100 * agree_fixed / max(n_fixed, 1):.3f}%); {n_random} verdicts on a `letter` that is not "
          f"a letter, which lm-eval replaces by a random one ({agree_random} agree)")
    lm_agg, podium_agg = aggregates(lm_rows), aggregates(podium_rows)
    # The 99.5% goal is judged on the verdicts lm-eval defines; its random draws
    # (docs 19 and 22) are listed below and in docs/CROSSCHECK.md.
    ok = n_fixed > 0 and agree_fixed / n_fixed >= 0.995
    print(f"{'metric':<26} {'lm-eval':>9} {'Podium':>9} {'results.json':>13} {'diff (pts)':>10}")
    for metric in METRICS:
        reported = None
        if podium_results is not None:
            reported = podium_results[f"{metric},none"]
            if abs(reported - podium_agg[metric]) > 1e-9:
                print(f"  results.json's {metric} {reported} is not the mean of its samples' verdicts")
                ok = False
        diff = 100 * ((reported if reported is not None else podium_agg[metric]) - lm_agg[metric])
        ok &= abs(diff) <= 0.2
        shown = f"{reported:.6f}" if reported is not None else "-"
        print(f"{metric:<26} {lm_agg[metric]:>9.6f} {podium_agg[metric]:>9.6f} {shown:>13} {diff:>+10.3f}")
    for label, iid, mode, p, q, kwargs, response in disagreements:
        excerpt = response if len(response) <= 160 else response[:160] + "..."
        print(f"  DIFFER {label} {iid} {mode}: Podium {p}, lm-eval {q}; kwargs {json.dumps(kwargs)}; "
              f"response {json.dumps(excerpt, ensure_ascii=False)}")
    return ok


def drawn_at_random(iid, kwargs):
    """lm-eval's LetterFrequencyChecker draws a random letter for a `letter` that is
    not one character whose lower case is in a-z (IFEval docs 19 and 22: `#`, `!`)."""
    if iid != "keywords:letter_frequency":
        return False
    letter = kwargs.get("letter") or ""
    return not (len(letter) == 1 and 97 <= ord(letter.lower()) <= 122)


def from_samples(path, results_path=None):
    items = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            sample = json.loads(line)
            if sample["status"] != "ok":
                continue
            doc = sample["doc"]
            response = sample["resps"]["results"][0]["text"]
            verdicts = sample["metrics"]["instructions"]
            items.append((f"doc {sample['doc_id']} (key {doc['key']})", doc, response,
                          [v["strict"] for v in verdicts], [v["loose"] for v in verdicts]))
    reported = None
    if results_path:
        with open(results_path, encoding="utf-8") as f:
            # samples_<task>.jsonl: the task's entry (ifeval, or a bench variant).
            task = os.path.basename(path)[len("samples_"):-len(".jsonl")]
            reported = json.load(f)["results"][task]
    return compare(items, reported)


def docs():
    with open(DATA, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def following(doc):
    """A response built to follow the doc's instructions from their arguments."""
    parts = {"title": "<<A Title>>", "body": [], "end": ""}
    words = ["This", "is", "an", "answer"]
    for iid, kw in zip(doc["instruction_id_list"], doc["kwargs"]):
        if iid == "keywords:existence":
            words += kw["keywords"]
        elif iid == "keywords:frequency":
            words += [kw["keyword"]] * (kw["frequency"] + (0 if kw["relation"] == "at least" else -1))
        elif iid == "keywords:letter_frequency" and kw["let_relation"] == "at least":
            words.append(kw["letter"] * kw["let_frequency"])
        elif iid == "detectable_content:number_placeholders":
            words += [f"[place{i}]" for i in range(kw["num_placeholders"])]
        elif iid == "detectable_format:number_highlighted_sections":
            words += [f"*highlight {i}*" for i in range(kw["num_highlights"])]
        elif iid == "detectable_format:number_bullet_lists":
            parts["body"] += [f"* point {i}" for i in range(kw["num_bullets"])]
        elif iid == "detectable_format:multiple_sections":
            parts["body"] += [f"{kw['section_spliter']} {i + 1}\nText." for i in range(kw["num_sections"])]
        elif iid == "detectable_content:postscript":
            parts["end"] += f"\n{kw['postscript_marker']} a note."
        elif iid == "startend:end_checker":
            parts["end"] += f"\n{kw['end_phrase']}"
        elif iid == "length_constraints:number_words" and kw["relation"] == "at least":
            words += ["filler"] * kw["num_words"]
        elif iid == "length_constraints:number_sentences" and kw["relation"] == "at least":
            parts["body"] += ["A sentence here."] * kw["num_sentences"]
        elif iid == "change_case:capital_word_frequency" and kw["capital_relation"] == "at least":
            words += ["LOUD"] * kw["capital_frequency"]
    text = parts["title"] + "\n" + " ".join(words) + ".\n" + "\n".join(parts["body"]) + parts["end"]
    for iid, kw in zip(doc["instruction_id_list"], doc["kwargs"]):
        if iid == "combination:repeat_prompt":
            text = kw["prompt_to_repeat"] + "\n" + text
        elif iid == "length_constraints:nth_paragraph_first_word":
            paras = [f"Paragraph {i} text." for i in range(kw["num_paragraphs"])]
            paras[kw["nth_paragraph"] - 1] = f"{kw['first_word'].capitalize()} starts this one. {text}"
            text = "\n\n".join(paras)
        elif iid == "length_constraints:number_paragraphs":
            text = " *** ".join([text] + ["More."] * (kw["num_paragraphs"] - 1))
        elif iid == "punctuation:no_comma":
            text = text.replace(",", "")
        elif iid == "change_case:english_lowercase":
            text = text.lower()
        elif iid == "change_case:english_capital":
            text = text.upper()
        elif iid == "combination:two_responses":
            text = text + "\n******\n" + "A different second response."
        elif iid == "detectable_format:json_format":
            text = "```json\n" + json.dumps({"answer": text}) + "\n```"
        elif iid == "startend:quotation":
            text = '"' + text + '"'
        elif iid == "detectable_format:constrained_response":
            text = "My answer is yes."
    return text


def synthetic_write(path):
    with open(path, "w", encoding="utf-8") as out:
        for i, doc in enumerate(docs()):
            built = following(doc)
            variants = [
                doc["prompt"],
                doc["prompt"].upper(),
                built,
                "Sure! Here is my answer:\n" + built + "\nI hope this helps.",
                built.replace("\n", " ").replace("*", ""),
                "**" + built[: len(built) // 2] + "**",
            ]
            for j, response in enumerate(variants):
                out.write(json.dumps({"label": f"doc {i} variant {j}", "key": doc["key"],
                                      "instruction_id_list": doc["instruction_id_list"],
                                      "kwargs": doc["kwargs"], "prompt": doc["prompt"],
                                      "response": response}, ensure_ascii=False) + "\n")


def synthetic_compare(path, verdicts_path):
    items = []
    with open(path, encoding="utf-8") as f, open(verdicts_path, encoding="utf-8") as g:
        for line, verdict_line in zip(f, g):
            case, verdicts = json.loads(line), json.loads(verdict_line)
            items.append((case["label"], case, case["response"], verdicts["strict"], verdicts["loose"]))
    return compare(items)


def main(argv):
    if len(argv) >= 2 and argv[0] == "samples":
        ok = from_samples(argv[1], argv[2] if len(argv) > 2 else None)
    elif len(argv) == 2 and argv[0] == "synthetic-write":
        synthetic_write(argv[1])
        return 0
    elif len(argv) == 3 and argv[0] == "synthetic-compare":
        ok = synthetic_compare(argv[1], argv[2])
    else:
        print(__doc__)
        return 2
    print("PASS" if ok else "FAIL: below 99.5% agreement (on the verdicts lm-eval does not draw at random) "
          "or an aggregate off by more than 0.2 points")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
