"""What a 422 says about a request that failed validation, in the reader's language.

Runs in the server: FastAPI's handler for RequestValidationError (app.web.main). pydantic writes
each error's `msg` in English; its `type` and `ctx` say the same as data
(`{"type": "less_than_equal", "ctx": {"le": 5}}`). This module is the one place that turns
`type` and `ctx` into a `Said` (app.live.said): an English key with `%(name)s` for each value,
whose Chinese is in the interface's catalog (static/i18n.zh.json) like every other string.
The answer keeps FastAPI's shape (`detail`: a list of `{type, loc, msg, input, ctx}`): an
English client gets pydantic's own `msg`, as before; a Chinese one (the page's language:
the `procscope_lang` cookie, else Accept-Language; app.i18n) gets `msg` in Chinese; both
get `i18n` beside it, which the page's told() shows (static/i18n.js).

The keys are pydantic's English messages for the kinds of value the lessons' params take
(numbers with bounds, booleans, choices, lists of numbers: app.live.catalog) and for the body's
own shape (a missing, unknown or extra field, JSON that does not parse). Where pydantic's
message puts English between the values (the choices' "or", "1 item" / "2 items"), the key
is worded so that a value holds no English: the choices are one value, each quoted, and a
count is said with its noun in both numbers. A type without a key keeps pydantic's English
(and no `i18n`): tests/test_errors.py walks every param of every lesson so that none the
lessons can meet is left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from procscope import i18n
from procscope.live.said import Said, Value, answer

# pydantic's type -> the English key: pydantic's own message, but for the choices ("one of",
# not "or" between them). `TYPE.one`: the same when the count it names is 1 ("1 item").
MESSAGES: dict[str, str] = {
    "greater_than_equal": "Input should be greater than or equal to %(ge)s",
    "less_than_equal": "Input should be less than or equal to %(le)s",
    "int_type": "Input should be a valid integer",
    "int_parsing": "Input should be a valid integer, unable to parse string as an integer",
    "int_from_float": "Input should be a valid integer, got a number with a fractional part",
    "float_type": "Input should be a valid number",
    "float_parsing": "Input should be a valid number, unable to parse string as a number",
    "bool_type": "Input should be a valid boolean",
    "bool_parsing": "Input should be a valid boolean, unable to interpret input",
    "literal_error": "Input should be one of %(choices)s",
    "list_type": "Input should be a valid list",
    "too_short": "List should have at least %(min_length)s items after validation, "
                 "not %(actual_length)s",
    "too_short.one": "List should have at least %(min_length)s item after validation, "
                     "not %(actual_length)s",
    "too_long": "List should have at most %(max_length)s items after validation, "
                "not %(actual_length)s",
    "too_long.one": "List should have at most %(max_length)s item after validation, "
                    "not %(actual_length)s",
    "missing": "Field required",
    "extra_forbidden": "Extra inputs are not permitted",
    "model_attributes_type": "Input should be a valid dictionary or object to extract "
                             "fields from",
    "union_tag_invalid": "Input tag %(tag)s found using %(discriminator)s does not match "
                         "any of the expected tags: %(expected_tags)s",
    "union_tag_not_found": "Unable to extract tag using discriminator %(discriminator)s",
    "json_invalid": "JSON decode error",
}

# pydantic's rendering of allowed values in ctx: each one's repr, ", " and " or " between.
_REPR = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def _number(x: Any) -> Value:
    """A bound as pydantic writes it: 5, not 5.0 (the JSON number a page's t() fills in)."""
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return x if isinstance(x, (int, float)) else str(x)


def _choices(rendered: Any) -> str:
    """pydantic's "'a', 'b' or 'c'" as "'a', 'b', 'c'": its values, without the English."""
    found = _REPR.findall(str(rendered))
    return ", ".join(found) if found else str(rendered)


def _tag(tag: Any) -> str:
    return repr(str(tag))


# How a type's ctx becomes the key's values (a type not here: the key has none).
_VALUES: dict[str, Callable[[Mapping[str, Any]], dict[str, Value]]] = {
    "greater_than_equal": lambda ctx: {"ge": _number(ctx.get("ge"))},
    "less_than_equal": lambda ctx: {"le": _number(ctx.get("le"))},
    "literal_error": lambda ctx: {"choices": _choices(ctx.get("expected", ""))},
    "too_short": lambda ctx: {"min_length": _number(ctx.get("min_length")),
                              "actual_length": _number(ctx.get("actual_length"))},
    "too_long": lambda ctx: {"max_length": _number(ctx.get("max_length")),
                             "actual_length": _number(ctx.get("actual_length"))},
    "union_tag_invalid": lambda ctx: {"tag": _tag(ctx.get("tag", "")),
                                      "discriminator": str(ctx.get("discriminator", "")),
                                      "expected_tags": _choices(ctx.get("expected_tags", ""))},
    "union_tag_not_found": lambda ctx: {"discriminator": str(ctx.get("discriminator", ""))},
}


def said_of(error: Mapping[str, Any]) -> Said | None:
    """One pydantic error (`type`, `ctx`) as a Said; None for a type without a key, or a
    list's error about another kind of container ("Tuple should have ...")."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind not in MESSAGES or (kind in ("too_short", "too_long")
                                and ctx.get("field_type") != "List"):
        return None
    values = _VALUES[kind](ctx) if kind in _VALUES else {}
    bound = values.get("min_length", values.get("max_length"))
    key = MESSAGES[f"{kind}.one"] if bound == 1 and f"{kind}.one" in MESSAGES \
        else MESSAGES[kind]
    return Said(key, values)


def described(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's list of errors, each `msg` a Said where this module has its key (the
    English text still pydantic's own: a Said is the str it is given)."""
    out = []
    for error in jsonable_encoder(errors):
        said = said_of(error)
        if said is not None:
            error["msg"] = Said.keeping(str(error.get("msg", "")), said)
        out.append(error)
    return out


async def request_validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422, with `i18n` beside each msg and the msg in the request's language."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(answer(described(exc.errors()), i18n.language(request)),
                        status_code=422, headers={"Vary": "Accept-Language, Cookie"})
