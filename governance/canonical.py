"""RFC 8785 canonical JSON for ledger records, and the checks that make a value acceptable.

rfc8785 refuses NaN, infinities, integers of 2**53 or more, Decimal, bytes and sets; we check
first so the caller gets the path of the offending value, not a bare TypeError.
"""

from __future__ import annotations

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


def canonical_bytes(document: dict) -> bytes:
    return rfc8785.dumps(document)
