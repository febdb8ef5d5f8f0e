"""JSON from people and API clients, parsed with limits: no NaN or infinities, no integers
beyond what JSON tools agree on (2**53), no nesting deeper than 64 levels.

The ledger refuses such values (RFC 8785) and deep nesting exhausts the recursion limit in
validators and diffs, so they are refused at the door with a readable message instead."""

from __future__ import annotations

import json
import math

MAX_DEPTH = 64
MAX_SAFE_INTEGER = 2**53 - 1


class JSONRefused(ValueError):
    pass


def _int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise JSONRefused(f"the integer {text[:30]} is beyond ±2^53; send it as text")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONRefused(f"the number {text[:30]} is out of range")
    return value


def _constant(name: str):
    raise JSONRefused(f"{name} is not JSON")


def check_depth(value, limit: int = MAX_DEPTH) -> None:
    """JSONRefused when `value` nests deeper than `limit` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                raise JSONRefused(f"nested deeper than {limit} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def loads(text):
    """The parsed value, or ValueError (JSONRefused or json's own) with a readable message."""
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise JSONRefused(f"nested deeper than {MAX_DEPTH} levels") from None
    check_depth(value)
    return value
