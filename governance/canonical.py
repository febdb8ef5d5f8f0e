"""RFC 8785 canonical JSON for ledger records, and the checks that make a value acceptable.

rfc8785 refuses NaN, infinities, integers of 2**53 or more, Decimal, bytes and sets; we check
first so the caller gets the path of the offending value, not a bare TypeError.
"""

from __future__ import annotations

import math
import re

import orjson
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


def check_json_value(value, path: str = "body") -> bool:
    """Raise CanonicalError naming the path of the first value the ledger cannot hold.

    Returns whether orjson prints `value` exactly as RFC 8785 does (`prints_alike`),
    found on the same walk, so `canonical_bytes` need not walk it again. Paths are spelled out
    only for an error: building one per value cost more than the checks (bench/ledger.py).
    """
    alike = True
    stack: list[tuple] = [(value, None, path)]  # (value, its parent's entry, its key or index)
    while stack:
        entry = stack.pop()
        item = entry[0]
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int or (isinstance(item, int) and not isinstance(item, bool)):
            if abs(item) > MAX_SAFE_INTEGER:
                raise CanonicalError(
                    _path_of(entry), f"integer {item} is beyond 2**53-1; store it as a string"
                )
            alike = alike and kind is int
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise CanonicalError(_path_of(entry), f"{item} is not a finite number")
            alike = alike and kind is float and _float_alike(item)
            continue
        if isinstance(item, dict):
            for key, child in item.items():
                if key not in _PLAIN_KEYS:
                    alike = _check_key(key, entry) and alike
                child_kind = type(child)
                if child_kind is str or child_kind is bool or child is None:
                    continue  # always fine: not worth a trip through the stack
                stack.append((child, entry, key))
            alike = alike and kind is dict
            continue
        if isinstance(item, (list, tuple)):
            stack.extend((child, entry, index) for index, child in enumerate(item))
            alike = alike and kind is list
            continue
        if isinstance(item, str):  # a str subclass
            alike = False
            continue
        raise CanonicalError(
            _path_of(entry),
            f"{type(item).__name__} is not JSON; convert it (dates to ISO 8601 strings, "
            "decimals to strings or floats)",
        )
    return alike


# Keys already found to be plain (a str, not a credential's name, sorted alike by RFC 8785):
# bodies reuse a few hundred names, and the two patterns were most of a check's time.
_PLAIN_KEYS: set[str] = set()
_PLAIN_KEYS_MAX = 10_000


def _check_key(key, entry: tuple) -> bool:
    """Raise CanonicalError for a key the ledger refuses; return whether it prints alike."""
    if not isinstance(key, str):
        raise CanonicalError(_path_of(entry), f"key {key!r} is not a string")
    if SECRET_KEY_PATTERN.search(key):
        raise CanonicalError(
            f"{_path_of(entry)}.{key}", "looks like a credential; secrets never enter the ledger"
        )
    if type(key) is not str or not _UTF16_SAFE_KEY.match(key):
        return False
    if len(_PLAIN_KEYS) < _PLAIN_KEYS_MAX:
        _PLAIN_KEYS.add(key)
    return True


def _path_of(entry: tuple) -> str:
    """body.inputs[2].amount for the stack entry of that value in `check_json_value`."""
    parts = []
    while entry[1] is not None:
        label = entry[2]
        parts.append(f"[{label}]" if type(label) is int else f".{label}")
        entry = entry[1]
    return entry[2] + "".join(reversed(parts))


# orjson prints exactly RFC 8785's bytes for documents of plain dicts, lists, strings, safe
# integers, booleans, null and the floats described in `prints_alike` (the hypothesis test in
# tests/unit/test_canonical.py compares the two); rfc8785.dumps is pure Python and took 0.6 ms
# of an append's 1.7 ms for a 1 kB record, json's C encoder 9.5 us, orjson 0.9 us
# (bench/ledger.py).
_SORTED = orjson.OPT_SORT_KEYS
# Floats printed alike by Python's repr and ECMAScript's Number.prototype.toString: both give the
# shortest round-trip digits, and both use plain (not exponent) notation from 1e-4 to below
# 1e16; ECMAScript prints integral floats without ".0", so those are left to rfc8785.
_FLOAT_PLAIN_MIN, _FLOAT_PLAIN_MAX = 1e-4, 1e16
# Keys sort by UTF-16 code units in RFC 8785, by code points in Python: the two orders agree
# while every key character is below the surrogate range.
_UTF16_SAFE_KEY = re.compile(r"[^\ud800-\U0010ffff]*\Z")


def _float_alike(number: float) -> bool:
    return _FLOAT_PLAIN_MIN <= abs(number) < _FLOAT_PLAIN_MAX and not number.is_integer()


def prints_alike(value) -> bool:
    """True when orjson and RFC 8785 print `value` identically (see above)."""
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
            if _float_alike(item):
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


def canonical_bytes(document: dict, *, alike: tuple[str, ...] = ()) -> bytes:
    """RFC 8785 bytes of `document` (orjson only where its bytes are the same).

    `alike`: keys of `document` (plain strings) whose values the caller knows print alike
    (`check_json_value` says so of what it checked).
    """
    if type(document) is dict and all(
        key in alike or (type(key) is str and _UTF16_SAFE_KEY.match(key) and prints_alike(item))
        for key, item in document.items()
    ):
        try:
            return orjson.dumps(document, option=_SORTED)
        except orjson.JSONEncodeError:  # a lone surrogate, or deeper nesting than orjson takes
            pass
    return rfc8785.dumps(document)
