"""A request FastAPI could not read into its parameters (a word where a number goes, a missing form field, a body
that is not JSON), said as one sentence: which value, what it must be, what came. Reviewers see it on a page
or in the workspace's status line, so not the validator's wording ("Input should be a valid number") nor
its data structure. The sentences are SENTENCES in web/i18n.py, so a Russian page gets them in Russian."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

GENERIC = "A value of this request could not be read: correct it and send it again."


def _got(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


def _options(pattern: str) -> str | None:
    """``^(next|previous)$`` → ``next, previous``; None for a pattern that is not a plain choice."""
    m = re.fullmatch(r"\^?\(?((?:[\w ]+\|)+[\w ]+)\)?\$?", pattern)
    return ", ".join(m.group(1).split("|")) if m else None


def plain_sentence(errors: Sequence[Any]) -> str:
    """The first error of a RequestValidationError's ``errors()`` as one sentence (one thing to correct at a
    time: the next one, if any, gets its own sentence when the request comes again)."""
    if not errors:
        return GENERIC
    e = errors[0] if isinstance(errors[0], dict) else {}
    loc = [str(x) for x in e.get("loc", ()) if not isinstance(x, int)]
    kind, ctx = str(e.get("type", "")), e.get("ctx") or {}
    field = ".".join(loc[1:])
    got = _got(e.get("input"))
    if kind == "json_invalid":
        return "The request's body is not valid JSON: send a JSON object."
    if not field:  # the body as a whole
        if kind in ("dict_type", "model_attributes_type", "model_type"):
            return "The request's body must be a JSON object."
        if kind == "missing":
            return "The request has no body: send a JSON object."
        return GENERIC
    if field == "csrf" and kind == "missing":
        return "This form has no CSRF token: open the page again and send the form from it."
    if kind == "missing":
        return f"The value of “{field}” is missing: fill it in and send it again."
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"The value of “{field}” must be a number, like 0.5 (got {got})."
    if kind in ("int_parsing", "int_type", "int_from_float", "int_parsing_size"):
        return f"The value of “{field}” must be a whole number, like 3 (got {got})."
    if kind in ("bool_parsing", "bool_type"):
        return f"The value of “{field}” must be true or false (got {got})."
    bounds = {"greater_than_equal": ("ge", "at least"), "less_than_equal": ("le", "at most"),
              "greater_than": ("gt", "more than"), "less_than": ("lt", "less than")}
    if kind in bounds and bounds[kind][0] in ctx:
        key, how = bounds[kind]
        return f"The value of “{field}” must be {how} {ctx[key]} (got {got})."
    if kind == "string_pattern_mismatch" and (options := _options(str(ctx.get("pattern", "")))):
        return f"The value of “{field}” must be one of: {options} (got {got})."
    if kind in ("string_too_long", "too_long") and "max_length" in ctx:
        return f"The value of “{field}” is too long: at most {ctx['max_length']} characters or items."
    if kind == "list_type":
        return f"The value of “{field}” must be a list (got {got})."
    if kind == "string_type":
        return f"The value of “{field}” must be text (got {got})."
    return f"The value of “{field}” cannot be used (got {got}): correct it and send it again."
