"""Each lesson's words are data beside its code (experiments/NAME.toml, read by
experiments/lesson_words.py): a string without its other language, a key the format does not
have, a param without its help or a file that is not there stops the lesson from loading,
with the file and the key named."""

from __future__ import annotations

from typing import Any

import pytest

from procscope.experiments import EXPERIMENTS, load
from procscope.experiments.lesson_words import LessonWordsError, parse, read
from procscope.experiments.spec import Experiment, Param


def _words(**extra: Any) -> dict[str, Any]:
    return {"title": "T", "title_zh": "标题", "summary": "S", "summary_zh": "摘要",
            "lesson": "L", "lesson_zh": "课", **extra}


def test_every_lesson_takes_its_words_from_its_file() -> None:
    for eid in EXPERIMENTS:
        spec = load(eid)
        if spec.words is None:  # the self-test lessons (fails, flood) are not lessons
            continue
        assert spec.title == spec.words.title.en and spec.title_zh == spec.words.title.zh
        assert spec.lesson_zh == spec.words.lesson.zh
        for name, p in spec.params.items():
            assert (p.description, p.description_zh) == (spec.words.help[name].en,
                                                          spec.words.help[name].zh)


@pytest.mark.parametrize(("data", "named"), [
    ({k: v for k, v in _words().items() if k != "summary_zh"}, "summary_zh"),
    (_words(colour="red"), "colour"),
    (_words(params={"n": {"help": "How many"}}), "params.n.help_zh"),
    (_words(params={"n": {"help": "How many", "help_zh": "多少", "min": 1}}), "params.n.min"),
    (_words(question={"text": "How long?"}), "question.text_zh"),
    (_words(phrases={"done": "Done in {s}"}), "phrases.done_zh"),
    (_words(phrases={"done_zh": "完成"}), "phrases.done_zh"),
    (_words(lesson_zh=""), "lesson_zh"),
])
def test_a_string_without_its_other_language_is_named(data: dict[str, Any],
                                                      named: str) -> None:
    with pytest.raises(LessonWordsError, match=rf"^experiments/x\.toml: .*{named}"):
        parse("experiments/x.toml", data)


def test_a_missing_file_is_named() -> None:
    with pytest.raises(LessonWordsError, match=r"^experiments/nowhere\.toml: "):
        read("procscope.experiments.nowhere")


def test_a_param_without_its_help_is_named() -> None:
    words = parse("experiments/x.toml", _words(params={"n": {"help": "N", "help_zh": "数"}}))
    with pytest.raises(ValueError, match=r"experiments/x\.toml: \[params\.\*\] names \['n'\]"):
        Experiment(id="x", section="-", code="", main=lambda p, r: {}, words=words,
                   params={"n": Param(1), "m": Param(2)})
