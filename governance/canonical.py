"""RFC 8785 canonical JSON for ledger records, and the checks that make a value acceptable.

rfc8785 refuses NaN, infinities, integers of 2**53 or more, Decimal, bytes and sets; we check
first so the caller gets the path of the offending value, not a bare TypeError.
"""

from __future__ import annotations

import json
import math
import re

import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1

# Keys whose values are credentials. The ledger keeps evidence forever; a secret in it could
# never be removed, so such keys are refused outright (connections keep secrets, not bodies).
SECRET_KEY_PATTERN = re.compile(
    r"(^|_|-)(password|passwd|secret|api[_-]?key|apikey|token|authorization|private[_-]?key|"
    r"client[_-]?secret|credentials?)($|_|-)",
    re.IGNORECASE,
)


class CanonicalError(ValueError):
    """A value cannot go into the ledger; `path` says where it is (e.g. body.inputs[2].amount)."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def check_json_value(value, path: str = "body") -> None:
    """Raise CanonicalError naming the path of the first value the ledger cannot hold."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if item is None or isinstance(item, (bool, str)):
            continue
        if isinstance(item, int):
            if abs(item) > MAX_SAFE_INTEGER:
                raise CanonicalError(
                    where, f"integer {item} is beyond 2**53-1; store it as a string"
                )
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise CanonicalError(where, f"{item} is not a finite number")
            continue
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise CanonicalError(where, f"key {key!r} is not a string")
                if SECRET_KEY_PATTERN.search(key):
                    raise CanonicalError(
                        f"{where}.{key}", "looks like a credential; secrets never enter the ledger"
                    )
                stack.append((f"{where}.{key}", child))
            continue
        if isinstance(item, (list, tuple)):
            stack.extend((f"{where}[{i}]", child) for i, child in enumerate(item))
            continue
        raise CanonicalError(
            where,
            f"{type(item).__name__} is not JSON; convert it (dates to ISO 8601 strings, "
            "decimals to strings or floats)",
        )


# json's C encoder prints exactly RFC 8785's bytes for documents of plain dicts, lists, strings,
# safe integers, booleans, null and the floats described in `_same_in_both`; rfc8785.dumps is
# pure Python and took 0.6 ms of an append's 1.7 ms for a 1 kB record (bench/ledger.py).
_JSON = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"), check_circular=False
)
# Floats printed alike by Python's repr and ECMAScript's Number.prototype.toString: both give the
# shortest round-trip digits, and both use plain (not exponent) notation from 1e-4 to below
# 1e16; ECMAScript prints integral floats without ".0", so those are left to rfc8785.
_FLOAT_PLAIN_MIN, _FLOAT_PLAIN_MAX = 1e-4, 1e16
# Keys sort by UTF-16 code units in RFC 8785, by code points in Python: the two orders agree
# while every key character is below the surrogate range.
_UTF16_SAFE_KEY = re.compile(r"[^\ud800-\U0010ffff]*\Z")


def _same_in_both(value) -> bool:
    """True when json's encoder and RFC 8785 print `value` identically (see above)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
            return False
        if kind is float:
            magnitude = abs(item)
            if _FLOAT_PLAIN_MIN <= magnitude < _FLOAT_PLAIN_MAX and not item.is_integer():
                continue
            return False
        if kind is dict:
            for key in item:
                if type(key) is not str or not _UTF16_SAFE_KEY.match(key):
                    return False
            stack.extend(item.values())
            continue
        if kind is list:
            stack.extend(item)
            continue
        return False  # tuples, subclasses and anything else: rfc8785 decides
    return True


def canonical_bytes(document: dict) -> bytes:
    """RFC 8785 bytes of `document` (the json fast path only where its bytes are the same)."""
    if _same_in_both(document):
        try:
            return _JSON.encode(document).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 gives the error
            pass
    return rfc8785.dumps(document)
