"""A lesson's words, read from its data file: experiments/NAME.toml beside NAME.py.

The file holds every human-language string of the lesson, each in English and in Chinese
(a key `K` and its `K_zh`), in the form issue 28 gives a teacher's own lessons:

    title, title_zh, summary, summary_zh
    lesson, lesson_zh                       the lesson text (Markdown)
    [params.NAME]   help, help_zh           one table a param the lesson declares
    [question]      text, text_zh           the question before the run, if it asks one
    [phrases]       KEY, KEY_zh             the outcome's phrases, filled by words.say()

The defaults and bounds of params stay in the lesson's Python (spec.Param). The file is read
when the lesson's module is imported (from the folder of its package, procscope.experiments,
as installed: not through importlib.resources, whose import alone costs a spawned lesson
process ~12 ms), and a key without its other language, a missing key or an unknown one
fails that import, naming the file and the key.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass
from typing import Any

from procscope.experiments.words import Lang

TOP_KEYS = ("title", "summary", "lesson")
"""The keys every lesson's file has, each with its `_zh`."""


class LessonWordsError(ValueError):
    """A lesson's data file that does not hold its words as this module reads them."""


@dataclass(frozen=True)
class Said:
    """One string in both languages."""

    en: str
    zh: str

    def __getitem__(self, lang: Lang) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class LessonWords:
    """What a lesson says, in both languages (its spec.Experiment takes it as `words`)."""

    file: str  # as errors name it: "experiments/join.toml"
    title: Said
    summary: Said
    lesson: Said
    help: dict[str, Said]  # by param name
    question: Said | None
    phrases: dict[str, Said]  # the outcome's, by key

    def __getitem__(self, key: str) -> Said:
        """The outcome's phrase `key`: `WORDS["joined"][lang]`."""
        return self.phrases[key]


def read(module: str) -> LessonWords:
    """The words of the lesson whose module is `module` (a lesson passes its `__name__`)."""
    package, _, stem = module.rpartition(".")
    name = f"{stem}.toml"
    file = f"experiments/{name}"
    try:
        folder = os.path.dirname(sys.modules[package].__file__ or "")
        with open(os.path.join(folder, name), "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise LessonWordsError(f"{file}: {e}") from None
    return parse(file, data)


def parse(file: str, data: dict[str, Any]) -> LessonWords:
    """The words in a lesson file's parsed TOML; `file` names it in errors."""
    known = {*TOP_KEYS, *(k + "_zh" for k in TOP_KEYS), "params", "question", "phrases"}
    _no_other(file, "", data, known)
    params = _table(file, "params", data.get("params", {}))
    help_ = {}
    for param, table in params.items():
        _no_other(file, f"params.{param}.", _table(file, f"params.{param}", table),
                  {"help", "help_zh"})
        help_[param] = _said(file, f"params.{param}.", table, "help")
    question = None
    if "question" in data:
        table = _table(file, "question", data["question"])
        _no_other(file, "question.", table, {"text", "text_zh"})
        question = _said(file, "question.", table, "text")
    phrases = _table(file, "phrases", data.get("phrases", {}))
    _no_other(file, "phrases.", phrases,
              {k for k in phrases if not k.endswith("_zh")}
              | {k + "_zh" for k in phrases if not k.endswith("_zh")})
    return LessonWords(
        file=file,
        title=_said(file, "", data, "title"),
        summary=_said(file, "", data, "summary"),
        lesson=_said(file, "", data, "lesson"),
        help=help_,
        question=question,
        phrases={k: _said(file, "phrases.", phrases, k)
                 for k in phrases if not k.endswith("_zh")},
    )


def _said(file: str, where: str, table: dict[str, Any], key: str) -> Said:
    for k in (key, key + "_zh"):
        if not isinstance(table.get(k), str) or not table[k]:
            raise LessonWordsError(f"{file}: {where}{k} is missing or not a non-empty string "
                                   f"(every key is in English and in Chinese, {key} and "
                                   f"{key}_zh)")
    return Said(table[key], table[key + "_zh"])


def _table(file: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LessonWordsError(f"{file}: {key} is not a table")
    return value


def _no_other(file: str, where: str, table: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise LessonWordsError(f"{file}: unknown key {where}{unknown[0]}; valid here: "
                               f"{', '.join(sorted(known))}")
