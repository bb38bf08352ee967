"""How a lesson's outcome sentence writes numbers, counts and seconds.

Runs in the server: app.live.catalog calls each lesson's `outcome(result, lang)` when it
answers for a run. Standard library only, like every module of `experiments` (workers
re-import them).

Results arrive decoded from JSON, so a whole number may be a float (`"sum": 1.0`) and any
field may be missing; these helpers write `1`, not `1.0`, and `?` for a number that is not
there. The sentences were first written in JavaScript and read the same way now: numbers
as JavaScript prints them, booleans as `true` / `false`, seconds with 3 decimals below one
second and 2 above, rounded half up.

Every lesson's outcome is one `outcome(r, lang)`, its spec's `outcome`, which the server
calls once per language: the result read the same way for both, each phrase in English and
in Chinese side by side (dicts keyed by `Lang`), filled by `say()`.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal, TypedDict, TypeGuard

Lang = Literal["en", "zh"]  # the page's languages (app.i18n), the keys of a lesson's phrases


class Outcome(TypedDict):
    """A run's outcome in words: what happened, why it matters, and whether it went wrong."""

    text: str
    why: str
    bad: bool


def is_number(x: Any) -> TypeGuard[int | float]:
    """A JSON number (a bool is not one, although Python's bool is an int)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def word(x: Any) -> str:
    """Any JSON value as it reads in a sentence: `3`, `0.25`, `true`, `null`, `a,b`."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        return _float(x)
    if isinstance(x, list):
        return ",".join("" if v is None else word(v) for v in x)
    if isinstance(x, dict):
        return "[object Object]"
    return str(x)


def number(x: Any) -> str:
    """A number, or `?` when the result does not have it."""
    return word(x) if is_number(x) else "?"


def count(k: Any, one: str, many: str | None = None) -> str:
    """`1 ticket`, `3 tickets`, `2 processes` (with `many` given)."""
    return f"{word(k)} {one if k == 1 else many or one + 's'}"


def say(template: str, **values: Any) -> str:
    """`template` with its fields filled, in either language: `{n}` is `n` as word() writes
    it, `{n:ticket}` as count() does (`1 ticket`, `3 tickets`), `{n:process/processes}` with
    the plural given. `say("Sold {n:ticket}", n=3)`, `say("卖出 {n} 张票", n=3)`."""
    return template.format_map({name: _Said(value) for name, value in values.items()})


class _Said:
    """A value in a say() template: its format spec, if any, is the noun it counts."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __format__(self, noun: str) -> str:
        if not noun:
            return word(self.value)
        one, _, many = noun.partition("/")
        return count(self.value, one, many or None)


SECOND: dict[Lang, str] = {"en": "s", "zh": "秒"}  # the unit seconds() writes, by language


def seconds(x: Any, lang: Lang) -> str:
    """`0.508 s`, `2.13 s` (`2.13 秒` in Chinese), or `?` when it is not a number."""
    return f"{fixed(x, 3 if x < 1 else 2)} {SECOND[lang]}" if is_number(x) else "?"


def fixed(x: float, digits: int) -> str:
    """`x` with `digits` decimals, rounded half up from its exact binary value."""
    # Imported here: every worker of a run imports its lesson's module, and with it this
    # one; only the server ever writes a sentence.
    from decimal import ROUND_HALF_UP, Decimal

    if x == 0:
        x = 0.0  # no "-0.00"
    exact = Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return f"{exact:f}"


def json_list(x: Any) -> str:
    """A value as compact JSON: `["first","second"]`."""
    return json.dumps(x, ensure_ascii=False, separators=(",", ":"))


def _float(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    text = repr(x)
    if "e" not in text:
        return text
    if 1e-6 <= abs(x) < 1e21:  # positional, with the shortest digits that round-trip
        from decimal import Decimal

        return f"{Decimal(text):f}"
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{'-' if exponent.startswith('-') else '+'}{exponent.lstrip('+-0') or '0'}"
