"""JSON Pointer (RFC 6901): where in a JSON response a value is found."""

from __future__ import annotations

import re

ARRAY_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")


class PointerError(ValueError):
    pass


class Missing(LookupError):
    """The document has nothing at the pointer."""


def parse(pointer) -> tuple[str, ...]:
    """The pointer's reference tokens; PointerError if it is not a valid RFC 6901 pointer."""
    if not isinstance(pointer, str):
        raise PointerError("a JSON pointer is text")
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise PointerError(f"{pointer[:60]!r} must be empty or start with /")
    tokens = []
    for raw in pointer[1:].split("/"):
        if re.search(r"~(?![01])", raw):
            raise PointerError(f"{pointer[:60]!r}: '~' must be followed by 0 or 1")
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tuple(tokens)


def resolve(document, pointer):
    """The value at `pointer` (text or parsed tokens); Missing when there is none."""
    tokens = parse(pointer) if isinstance(pointer, str) else pointer
    value = document
    for token in tokens:
        if isinstance(value, dict):
            if token not in value:
                raise Missing(token)
            value = value[token]
        elif isinstance(value, list):
            if not ARRAY_INDEX.match(token) or int(token) >= len(value):
                raise Missing(token)
            value = value[int(token)]
        else:
            raise Missing(token)
    return value
