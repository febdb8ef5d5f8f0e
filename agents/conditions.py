"""CEL conditions over one root variable (`input`): compile, analyse, explain errors.

The rules kind reads its decision-table conditions through this module; anything else that
evaluates a condition over named fields (a router branch, say) can too.

Compilation is cached by source text (`compile_condition` is an LRU), so a published table's
conditions compile once per process, and a draft edited in "Try it" recompiles only the rows
that changed. The library (`common-expression-language`, see STACK-NOTES.md) gives a syntax
error's line, column and the expected tokens, and `Program.references()` lists the top-level
variables; which *fields* of `input` a condition reads is found here by a small tokenizer
(comments and string literals skipped), since the library does not report field selections.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

import cel

ROOT = "input"
MAX_LENGTH = 2_000

# The functions common-expression-language implements natively (its opt-in Python stdlib
# extensions are not enabled). Macros (has, all, exists, exists_one, map, filter) are listed
# too: the library reports some macro forms as functions.
FUNCTIONS = frozenset(
    {
        "size",
        "contains",
        "startsWith",
        "endsWith",
        "matches",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "timestamp",
        "duration",
        "dyn",
        "type",
        "getFullYear",
        "getMonth",
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)
COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})
MACROS = COMPREHENSIONS | {"has"}
# Type names are identifiers in CEL (`type(x) == double`), resolved by the library itself.
TYPE_NAMES = frozenset(
    {"bool", "bytes", "double", "int", "list", "map", "null_type", "string", "type", "uint"}
)
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")

_TOKENS = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
    |(?P<string>
        (?:[rR][bB]?|[bB][rR])(?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|"[^"\n]*")
        |[bB]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"
                 |'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")
    )
    |(?P<number>0[xX][0-9a-fA-F]+[uU]?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class ConditionError(ValueError):
    """A condition cannot be used; `problem` is a sentence fit to show next to the field."""

    def __init__(self, problem: str):
        self.problem = problem
        super().__init__(problem)


@dataclass(frozen=True)
class Condition:
    source: str
    program: cel.Program
    fields: tuple[str, ...]  # the fields read as input.<name>, in order of first use
    unknown_names: tuple[str, ...] = ()  # free names other than input (refused on save)


@functools.lru_cache(maxsize=4096)
def compile_condition(source: str) -> Condition:
    """Compile and analyse a condition; ConditionError names the problem. Cached by text."""
    if not isinstance(source, str) or not source.strip():
        raise ConditionError("write a condition, e.g. input.amount < 1000 (or true for any input)")
    if len(source) > MAX_LENGTH:
        raise ConditionError(f"at most {MAX_LENGTH} characters (this one has {len(source)})")
    try:
        program = cel.compile(source)
    except Exception as exc:  # the library raises ValueError; anything else is still a refusal
        raise ConditionError(explain_syntax_error(source, str(exc))) from None
    fields, bound = _analyse(source)
    references = program.references()
    unknown = sorted(set(references["variables"]) - {ROOT} - bound - TYPE_NAMES)
    for function in references["functions"]:
        if re.fullmatch(r"[A-Za-z]\w*", function) and function not in FUNCTIONS | MACROS:
            raise ConditionError(
                f"unknown function {function!r}; available: {', '.join(sorted(FUNCTIONS))}"
            )
    return Condition(
        source=source, program=program, fields=tuple(fields), unknown_names=tuple(unknown)
    )


def check_names(condition: Condition, known: list[str]) -> None:
    """ConditionError naming the first name or field the condition reads that is not an input
    field in `known`."""
    for name in condition.unknown_names:
        hint = f"; did you mean {ROOT}.{name}?" if name in known else ""
        raise ConditionError(
            f"unknown name {name!r}: a condition reads the agent's input fields as "
            f"{ROOT}.<field>{hint}"
        )
    for name in condition.fields:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {ROOT}.{close[0]}?" if close else ""
            listing = ", ".join(known) if known else "none"
            raise ConditionError(
                f"{ROOT}.{name} is not an input field of this agent{hint} (input fields: {listing})"
            )


def _analyse(source: str) -> tuple[list[str], set[str]]:
    """(fields read from the root, names bound by comprehensions), refusing dynamic access to
    the root (`input[x]`, bare `input`) and nested comprehensions (a 2,000-character condition
    nesting them can run for minutes)."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKENS.finditer(source) if m.lastgroup != "space"]

    def at(i: int) -> tuple[str, str]:
        return tokens[i] if 0 <= i < len(tokens) else ("", "")

    fields: list[str] = []
    bound: set[str] = set()
    depth = 0
    open_comprehensions: list[int] = []  # paren depth of each comprehension's argument list
    for i, (kind, text) in enumerate(tokens):
        if text == "(":
            depth += 1
            if at(i - 1)[1] in COMPREHENSIONS and at(i - 2)[1] == ".":
                if open_comprehensions:
                    raise ConditionError(
                        "comprehensions (all, exists, exists_one, map, filter) cannot be nested"
                    )
                open_comprehensions.append(depth)
                if at(i + 1)[0] == "name" and at(i + 2)[1] == ",":
                    if at(i + 1)[1] == ROOT:
                        raise ConditionError(
                            f"{ROOT!r} names the agent's input: choose another variable name"
                        )
                    bound.add(at(i + 1)[1])
        elif text == ")":
            if open_comprehensions and open_comprehensions[-1] == depth:
                open_comprehensions.pop()
            depth -= 1
        elif kind == "name" and text == ROOT and at(i - 1)[1] != ".":
            name = _selected_field(tokens, i)
            if name is None:
                raise ConditionError(
                    f"read input fields by name, as {ROOT}.<field>; to test whether an "
                    f"optional field was given, write has({ROOT}.<field>)"
                )
            if name not in fields:
                fields.append(name)
    return fields, bound


def _selected_field(tokens: list[tuple[str, str]], i: int) -> str | None:
    following = [text for _, text in tokens[i + 1 : i + 4]]
    kinds = [kind for kind, _ in tokens[i + 1 : i + 4]]
    if len(following) >= 2 and following[0] == "." and kinds[1] == "name":
        if len(following) == 3 and following[2] == "(":
            return None  # a method called on the whole input, e.g. input.size()
        return following[1]
    if len(following) == 3 and following[0] == "[" and kinds[1] == "string" and following[2] == "]":
        literal = following[1].lstrip("rRbB")
        body = literal[3:-3] if literal[:3] in ("'''", '"""') else literal[1:-1]
        return body if FIELD_NAME.fullmatch(body) else None
    return None


# --- Readable syntax errors -------------------------------------------------------------------

_FIRST_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (?:Syntax error: )?([^\n]*)")
_OPERAND_TOKENS = "IDENTIFIER"
_WORD_HINTS = {
    "and": "write && for and",
    "or": "write || for or",
    "not": "write ! for not",
    "AND": "write && for and",
    "OR": "write || for or",
}


def explain_syntax_error(source: str, message: str) -> str:
    """`Syntax error at L:C: <what>` plus the line and a caret, from the library's message."""
    prefix = f"Failed to parse expression '{source}': "
    if message.startswith(prefix):
        message = message[len(prefix) :]
    match = _FIRST_ERROR.search(message)
    if not match:
        return f"Syntax error: {message.strip().splitlines()[0] if message.strip() else '?'}"
    line, column = int(match.group(1)), int(match.group(2))
    what = _plain_words(match.group(3))
    text = f"Syntax error at {line}:{column}: {what}"
    snippet = _snippet(source, line, column)
    return f"{text}\n{snippet}" if snippet else text


def _plain_words(what: str) -> str:
    hint = ""
    inner = re.search(r'msg: "([^"]*)"', what)  # e.g. the parser's recursion limit
    if inner:
        what = inner.group(1)
        if "Recursion limit" in what:
            what = f"nested too deeply ({what[:1].lower()}{what[1:]})"
    found = re.match(r"(mismatched|extraneous) input '(.*?)'(.*)", what)
    if found:
        seen, rest = found.group(2), found.group(3)
        what = (
            "the condition ends too early" if seen == "<EOF>" else f"unexpected {seen!r}"
        ) + rest
        hint = _WORD_HINTS.get(seen, "")
    found = re.match(r"token recognition error at: '(.*)'$", what)
    if found:
        text = found.group(1)
        what = f"unrecognised text {text!r}"
        if text[:1] in ("'", '"'):
            hint = "a quote is not closed"
        elif text[:1] == "=":
            hint = "compare with =="
        elif not text.isascii():
            hint = "names use ASCII letters, digits and _"
    expecting = re.search(r" expecting (\{.*\}|\S+)$", what)
    if expecting:
        expected = expecting.group(1)
        if _OPERAND_TOKENS in expected:
            words = "a value, a name or an opening bracket"
        elif "'&&'" in expected or "'=='" in expected:
            words = "an operator (such as ==, <, in, &&, ||) or the end of the condition"
        elif expected == "<EOF>":
            words = "the end of the condition"
        else:
            words = expected
        what = what[: expecting.start()] + f", expecting {words}"
    return f"{what} ({hint})" if hint else what


def _snippet(source: str, line: int, column: int, width: int = 72) -> str:
    lines = source.splitlines() or [""]
    if not 1 <= line <= len(lines) or not lines[line - 1].strip():
        return ""
    text = lines[line - 1]
    start = max(0, min(column - 1 - width // 2, len(text) - width))
    shown = text[start : start + width]
    left = "…" if start > 0 else ""
    right = "…" if start + width < len(text) else ""
    return f"| {left}{shown}{right}\n| {'.' * (len(left) + column - 1 - start)}^"
