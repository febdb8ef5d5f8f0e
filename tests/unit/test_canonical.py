"""The canonical JSON of ledger records: our fast path must print exactly rfc8785's bytes.

Records are hashed over these bytes forever, so any difference between the orjson fast path and
RFC 8785 would make a record that no outside verifier reproduces. Hypothesis generates documents
across the whole JSON domain, including the cases the fast path hands to rfc8785 (integral and
tiny or huge floats, keys beyond the surrogate range, lone surrogates, control characters).
"""

from __future__ import annotations

import math

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance import canonical

SAFE = canonical.MAX_SAFE_INTEGER

text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=("Cs",))
)
keys = st.one_of(
    text,
    st.sampled_from(["seq", "v", "a", "\u00e9", "\ue000", "\U0001f600", "\x7f", "\u2028"]),
)
floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, 1e-4, 9.99e-5, 1e16, 1e21, 1e-7, 0.1, 123456789012345.6]),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-SAFE, max_value=SAFE), floats, text
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, documents, max_size=8))
def test_canonical_bytes_are_rfc8785_bytes(document):
    assert canonical.canonical_bytes(document) == rfc8785.dumps(document)


@pytest.mark.parametrize(
    "value",
    [1.0, -0.0, 0.0, 1e-5, 1e16, 1e21, 5e-324, 1.7976931348623157e308, 0.5, 2.5e-4, 1e15 + 0.5],
)
def test_floats_at_the_edges_of_the_fast_path(value):
    document = {"x": value, "y": [value, {"z": value}]}
    assert canonical.canonical_bytes(document) == rfc8785.dumps(document)
    assert math.isfinite(value)


def test_keys_that_sort_differently_in_utf16_go_to_rfc8785():
    # By code point U+E000 sorts before U+1F600; in UTF-16 U+1F600 is D83D DE00, so it sorts
    # first, as RFC 8785 requires.
    document = {"\ue000": 2, "\U0001f600": 1}
    produced = canonical.canonical_bytes(document)
    assert produced == rfc8785.dumps(document)
    assert produced.index("\U0001f600".encode()) < produced.index("\ue000".encode())


def test_a_lone_surrogate_is_refused_as_rfc8785_refuses_it():
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical.canonical_bytes({"a": "\ud800"})


def test_tuples_and_big_integers_follow_rfc8785():
    pair = {"t": (1, 2)}
    assert canonical.canonical_bytes(pair) == rfc8785.dumps(pair) == b'{"t":[1,2]}'
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical.canonical_bytes({"n": 2**60})


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, documents, max_size=8))
def test_the_check_finds_what_prints_alike_as_the_encoder_would(document):
    """`ledger.append` passes what `check_json_value` found to `canonical_bytes(alike=...)`."""
    try:
        alike = canonical.check_json_value(document)
    except canonical.CanonicalError:
        return  # refused (a credential-like key): never encoded
    assert alike == canonical.prints_alike(document)
    wrapped = {"body": document, "event": "x"}
    skipped = ("body",) if alike else ()
    assert canonical.canonical_bytes(wrapped, alike=skipped) == rfc8785.dumps(wrapped)


def test_the_check_names_the_path_of_a_refused_value():
    with pytest.raises(canonical.CanonicalError) as refused:
        canonical.check_json_value({"inputs": [{"a": 1}, {"b": {"amount": float("nan")}}]})
    assert refused.value.path == "body.inputs[1].b.amount"
    with pytest.raises(canonical.CanonicalError) as refused:
        canonical.check_json_value({"inputs": [{"api_key": "x"}]}, "personal")
    assert refused.value.path == "personal.inputs[0].api_key"


def test_subclasses_pass_the_check_but_go_to_rfc8785():
    class Name(str):
        pass

    document = {Name("k"): Name("v"), "n": True}
    assert canonical.check_json_value(document) is False
    assert canonical.canonical_bytes(document) == rfc8785.dumps(document)


def test_nesting_deeper_than_orjson_takes_goes_to_rfc8785():
    document: dict = {"a": []}
    inner = document["a"]
    for _ in range(300):
        inner.append([])
        inner = inner[0]
    assert canonical.canonical_bytes(document) == rfc8785.dumps(document)
