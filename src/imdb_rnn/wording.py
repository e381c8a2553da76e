"""What a declared setting allows, in words, and how a key or value shows in a one-line error.

The words are read off the pydantic declarations (type, bounds, choices, description), so params.yaml's
rule and its message, and a command line option's, cannot drift apart.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import Field, Strict, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo


def _bounds(metadata: list) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            found.update(_bounds(item.metadata))
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            if isinstance(item, annotated_types.BaseMetadata) and hasattr(item, name):
                found[name] = getattr(item, name)
    return found


def _describe(annotation: Any, metadata: list) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return _describe(base, [*metadata, *extra])
    if origin is Union:
        parts = [_describe(a, []) for a in get_args(annotation) if a is not type(None)]
        return ("null or " if type(None) in get_args(annotation) else "") + ", or ".join(parts)
    if origin is Literal:
        choices = get_args(annotation)
        return str(choices[0]) if len(choices) == 1 else "one of " + ", ".join(map(str, choices))
    b = _bounds(metadata)
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return f"an integer in [{b['ge']}, {b['le']}]" if "le" in b else f"an integer >= {b['ge']}"
    if annotation is float:
        low = f"({b['gt']:g}" if "gt" in b else f"[{b['ge']:g}"
        if "lt" not in b and "le" not in b:
            return f"a finite number {'>' if 'gt' in b else '>='} {b.get('gt', b.get('ge')):g}"
        high = f"{b['lt']:g})" if "lt" in b else f"{b['le']:g}]"
        return f"a number in {low}, {high}"
    if origin is tuple:
        return f"a list of {b['min_length']} to {b['max_length']} items, each {_describe(get_args(annotation)[0], [])}"
    if annotation is str:
        return f"a string of {b['min_length']} to {b['max_length']} characters"
    raise TypeError(f"no description for {annotation!r}")  # a new kind of field: describe it here


def allowed(cls: type, name: str) -> str:
    """What a field accepts, in words, from its declaration (type, bounds, choices, description)."""
    info: FieldInfo = cls.__pydantic_fields__[name]  # type: ignore[attr-defined]  # set by pydantic
    text = _describe(info.annotation, info.metadata)
    return f"{text}, {info.description}" if info.description else text


def int_arg(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse ``type=`` for an integer option, checked by the declaration params.yaml's integers use, so
    the command line refuses a value in the same words (``got 0; allowed: an integer >= 1``)."""
    declared = Annotated[int, Strict(), Field(ge=low, le=high)]
    check = TypeAdapter(declared)

    def parse(text: str) -> int:
        try:
            return check.validate_python(int(text))
        except (ValueError, ValidationError):  # int() or the bounds
            raise argparse.ArgumentTypeError(f"got {text}; allowed: {_describe(declared, [])}") from None

    return parse


def shown_key(key: Any) -> str:
    """A key as a line shows it: plain when printable text, else its repr (never a line break)."""
    return key if isinstance(key, str) and key.isprintable() and key.strip() == key and key else repr(key)


def shown_value(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
