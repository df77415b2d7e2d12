"""Writes crates/podium-tasks/tests/data/ifeval_cases.jsonl: hand-written
responses for every IFEval instruction, each with lm-eval's own strict and loose
verdict (from lm_eval/tasks/ifeval, run here). Podium's test
`ifeval_checkers_match_lm_eval_cases` asserts the same verdicts.

Run: /root/.cache/venv-ifeval/bin/python bench/ifeval/make_cases.py [--check]
(--check compares with the stored file instead of writing it).
"""

import json
import os
import sys

import lmeval_ifeval as lm

OUT = os.path.join(lm.REPO, "crates", "podium-tasks", "tests", "data", "ifeval_cases.jsonl")

LONG = ("word " * 300).strip()
PARAS = "First paragraph here.\n\nSecond one follows.\n\nThird and last."
C = []


def case(iid, kwargs, *responses):
    for r in responses:
        C.append((iid, kwargs, r))


case("keywords:existence", {"keywords": ["apple", "banana"]},
     "I like Apple and BANANA.", "Only an apple.", "", "pineapple bananas", "  \n ")
case("keywords:existence", {"keywords": ["co-op", "café"]}, "The CO-OP sells CAFÉ au lait.", "co op cafe")
case("keywords:frequency", {"keyword": "the", "frequency": 3, "relation": "at least"},
     "The cat, the dog, and THE bird.", "the the", "thethethe", "")
case("keywords:frequency", {"keyword": " data ", "frequency": 2, "relation": "less than"},
     "data is data", "one data point", "no mention")
case("keywords:forbidden_words", {"forbidden_words": ["bad", "evil"]},
     "This is good.", "That is BAD!", "badly done, evilness", "evil-doer", "")
case("keywords:letter_frequency", {"letter": "z", "let_frequency": 3, "let_relation": "at least"},
     "Zebras zigzag zealously", "zz", "ZZZ")
case("keywords:letter_frequency", {"letter": "E", "let_frequency": 2, "let_relation": "less than"},
     "hello", "eee", "Élan")
case("language:response_language", {"language": "fr"},
     "Bonjour, je suis très heureux de vous rencontrer aujourd'hui. Merci beaucoup pour votre aide.",
     "Hello, I am very happy to meet you today. Thank you very much for your help.",
     "12345 !!!")
case("language:response_language", {"language": "de"},
     "Der schnelle braune Fuchs springt über den faulen Hund und läuft dann in den Wald.")
case("language:response_language", {"language": "ru"},
     "Быстрая коричневая лиса прыгает через ленивую собаку и убегает в лес.")
case("language:response_language", {"language": "hi"},
     "मैं आज बहुत खुश हूँ क्योंकि मौसम बहुत अच्छा है और मैं अपने दोस्तों से मिल रहा हूँ।")
case("length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"},
     "One. Two.", "One. Two. Three.", "Mr. Smith went to Washington. He arrived at 5 p.m. today.",
     "Wait... what?! No way. Really.", "no punctuation at all")
case("length_constraints:number_sentences", {"num_sentences": 2, "relation": "at least"},
     "He said \"Stop.\" Then he left.", "J. K. Rowling wrote it.", "It costs $5.50. Cheap!",
     "First line\nsecond line. Third.")
case("length_constraints:number_paragraphs", {"num_paragraphs": 3},
     "a *** b *** c", "*** a *** b *** c ***", "a *** *** c", "a\n***\nb\n***\nc", "a ****** b *** c", "only one")
case("length_constraints:number_words", {"num_words": 5, "relation": "at least"},
     "one two three four five", "don't stop now", "a_b c-d e.f", LONG)
case("length_constraints:number_words", {"num_words": 4, "relation": "less than"},
     "one two three", "one two three four", "नमस्ते दुनिया")
case("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "Second"},
     PARAS, "First.\n\n\"Second,\" he said.\n\nThird.", "First.\n\nsecond\n\nThird.", "First.\n\n\n\nSecond\n\nThird.",
     "First.\n\nSecond.", "First.\n\n'Second's turn.\n\nThird.")
case("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "hello"},
     "Hello world.\n\nBye.", "Hello.\n\nBye.\n\n", "hello!\n\n  \n\nBye")
case("detectable_content:number_placeholders", {"num_placeholders": 2},
     "Dear [name], at [address].", "[only one]", "[a\nb] [c]", "[] []")
case("detectable_content:postscript", {"postscript_marker": "P.S."},
     "Hello.\nP.S. bye", "Hello.\np.s. bye", "Hello. PS bye", "Hello.\nP. S. bye")
case("detectable_content:postscript", {"postscript_marker": "P.P.S"},
     "Hi\nP.P.S later", "Hi\nP. P. S. later", "Hi\nPPS later")
case("detectable_content:postscript", {"postscript_marker": "Note:"},
     "Hi\nNOTE: this", "Hi note this")
case("detectable_format:number_bullet_lists", {"num_bullets": 2},
     "* one\n* two", "- one\n- two", "* one\n- two\n* three", "** bold\n* one\n* two", "*one\n  *two", "\n\n* a\n* b")
case("detectable_format:constrained_response", {},
     "My answer is yes.", "  My answer is maybe. ", "my answer is yes.", "My answer is no")
case("detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "*one* and *two*", "**bold** and *it*", "* * and *x*", "*a\nb* *c*", "****", "*only*")
case("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
     "Section 1\nfoo\nSection 2\nbar", "SECTION 1 foo SECTION 2", "Section 1 only", "Section1 a Section2 b")
case("detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 3},
     "SECTION 1 a SECTION 2 b SECTION 3 c", "Section 1 a Section 2 b Section 3 c")
case("detectable_format:json_format", {},
     '{"a": 1}', '```json\n{"a": [1, 2]}\n```', '```JSON\n{"a": NaN}\n```', "```\n[1, 2,]\n```",
     "Here is JSON: {\"a\": 1}", '{"a": 1e400}', "```Json\n\"text\"\n```", '{"a": "\\ud800"}', "```json```")
case("detectable_format:title", {},
     "<<My Title>>\nBody", "<< >> body", "<<a\nb>>", "<<<Nested>>>", "no title")
case("combination:two_responses", {},
     "First answer.\n******\nSecond answer.", "Same\n******\nSame", "A ****** B ****** C",
     "****** A ****** B ******", "A ************ B", "only one")
case("combination:repeat_prompt", {"prompt_to_repeat": "Write a poem about cats."},
     "Write a poem about cats. Cats are great.", "  write a POEM about cats.\nMeow", "Sure! Write a poem about cats.")
case("startend:end_checker", {"end_phrase": "Is there anything else I can help with?"},
     "Done. Is there anything else I can help with?", "Done. is there anything else i can help with?\"  ",
     "Is there anything else I can help with? Yes.")
case("change_case:capital_word_frequency", {"capital_frequency": 3, "capital_relation": "at least"},
     "THIS IS GREAT", "I LOVE NYC", "DON'T STOP", "U.S.A. AND UK", "Mixed Case Words", "A B")
case("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "less than"},
     "ONE word", "ONE TWO", "He said \"OK\". FINE.")
case("change_case:english_capital", {},
     "THIS IS AN ENGLISH SENTENCE ABOUT THE WEATHER TODAY.", "THIS IS mostly CAPS", "123 !!!",
     "CECI EST UNE PHRASE EN FRANÇAIS SUR LA MÉTÉO D'AUJOURD'HUI.")
case("change_case:english_lowercase", {},
     "this is an english sentence about the weather today.", "this Is not all lowercase",
     "ceci est une phrase en français sur la météo d'aujourd'hui.", "123")
case("punctuation:no_comma", {}, "No commas here.", "One, comma.", "Fullwidth，comma", "")
case("startend:quotation", {}, '"Quoted"', '  "Quoted"\n', '"', '""', "'single'", "\u201csmart\u201d")


def main():
    lines = []
    for iid, kwargs, response in C:
        doc = {"instruction_id_list": [iid], "kwargs": [kwargs], "prompt": ""}
        strict, loose = lm.verdicts(doc, response)
        lines.append(json.dumps({"id": iid, "kwargs": kwargs, "response": response,
                                 "strict": strict[0], "loose": loose[0]}, ensure_ascii=False))
    text = "\n".join(lines) + "\n"
    ids = {c[0] for c in C}
    missing = set(lm.registry.INSTRUCTION_DICT) - ids
    assert not missing, f"instructions without a case: {missing}"
    if "--check" in sys.argv:
        with open(OUT, encoding="utf-8") as f:
            stored = f.read()
        same = stored == text
        print(f"{len(lines)} cases over {len(ids)} instructions: "
              f"{'identical to' if same else 'DIFFERENT from'} {os.path.relpath(OUT, lm.REPO)}")
        sys.exit(0 if same else 1)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {len(lines)} cases over {len(ids)} instructions to {os.path.relpath(OUT, lm.REPO)}")


if __name__ == "__main__":
    main()
