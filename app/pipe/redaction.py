"""Secrets taken out of what procscope shows of a process: its command line, its words.

Runs wherever a command line is put on the page: in a lesson's processes (an orphan's
new parent, read from /proc: procscope.experiments.measure.command_of) and in the server
(a traced program's own command). Standard library only: every process of a lesson may
import it.

What is hidden, whoever's command line it is (procscope's own, or any program that takes
a token the same way): the word after `--token`, and whatever follows `token=` (which is
also `--token=VALUE`, `PROCSCOPE_TOKEN=VALUE` and a link's `?token=VALUE`), up to the end
of the word or of the query parameter. Each becomes `***`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

HIDDEN = "***"
FLAG = "--token"
# In one word of a command line: the rest of the word, or of the query parameter.
_IN_WORD = re.compile(r"(token=)[^&]+", re.IGNORECASE)
# In text (words joined by spaces, as a shell would quote them): the next word after the
# flag (not a next option), or what follows `token=`.
_VALUE = r"""(?:'[^']*'|"[^"]*"|[^\s"',;&]+)"""
_IN_TEXT = re.compile(rf"(token=){_VALUE}|(--token[ \t]+)(?!-){_VALUE}", re.IGNORECASE)


def redact_argv(words: Sequence[str]) -> list[str]:
    """A command line, word by word, with every secret `***`."""
    shown = []
    hide_next = False
    for word in words:
        if hide_next:
            shown.append(HIDDEN)
            hide_next = False
            continue
        hide_next = word == FLAG
        shown.append(_IN_WORD.sub(r"\1" + HIDDEN, word))
    return shown


def redact_text(text: str) -> str:
    """A command line already joined into one string (or any line), with every secret `***`."""
    return _IN_TEXT.sub(lambda m: (m.group(1) or m.group(2)) + HIDDEN, text)
