"""Templates builders write (prompts, paths, bodies), compiled and rendered in a sandbox.

Jinja2's SandboxedEnvironment with StrictUndefined and autoescape off, and three rules on top:

* On save, a template is compiled (a syntax error names the line) and may only name the
  variables it is given (input fields, tool parameters); attribute or item access to a name
  starting with ``_`` is refused then, so ``{{ ''.__class__ }}`` is an error on save. What the
  static check cannot see (``{{ x|attr('__class__') }}``) the sandbox refuses at render.
* ``*`` and ``**`` are bounded, and the rendered text is capped, so a template cannot build a
  gigabyte string or a huge number.
* Rendering mode decides how a value is written into the text: "text" as is; "url" URL-encoded
  (a value cannot add path segments or a query); "json" JSON-encoded (a string inside quotes
  is escaped, anything else is written as JSON), so an input cannot break out of a body.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from urllib.parse import quote

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from markupsafe import Markup

from agents.kinds.config import ConfigError

MAX_SOURCE = 50_000
MAX_RENDERED = 200_000
MAX_EXPONENT = 1000
UNDEFINED_NAME = re.compile(r"'([^']+)' is undefined")


class TemplateRefused(Exception):
    """Rendering was refused: unsafe access, a bound exceeded, a value that cannot be written."""


class TemplateMissing(Exception):
    """A value the template needs was not given (e.g. an optional input left empty)."""

    def __init__(self, message: str, names: list[str]):
        super().__init__(message)
        self.names = names


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponents above {MAX_EXPONENT} are not allowed")
        elif operator == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, (str, list, tuple)) and isinstance(count, int)
                if sized and len(seq) * count > MAX_RENDERED:
                    raise SecurityError("the result would be too large")
        return super().call_binop(context, operator, left, right)


def _url_value(value) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif value is None:
        value = ""
    return quote(str(value), safe="")


def _json_value(value) -> str:
    if isinstance(value, Markup):  # `| tojson` already wrote JSON
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        raise SecurityError(f"a {type(value).__name__} cannot be written as JSON") from None


def _environment(mode: str) -> _Sandbox:
    finalize = {"text": None, "url": _url_value, "json": _json_value}[mode]
    return _Sandbox(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=finalize,
    )


ENVIRONMENTS = {mode: _environment(mode) for mode in ("text", "url", "json")}


def compile_template(
    source, *, path: str, mode: str = "text", variables=None, static_checks: bool = True
):
    """The compiled template; ConfigError at `path` naming the line of any problem.

    `variables` (when given) are the only names the template may use."""
    if not isinstance(source, str):
        raise ConfigError(path, "must be text")
    if len(source) > MAX_SOURCE:
        raise ConfigError(path, f"at most {MAX_SOURCE} characters")
    environment = ENVIRONMENTS[mode]
    try:
        ast = environment.parse(source)
    except TemplateSyntaxError as exc:
        raise ConfigError(path, f"line {exc.lineno}: {exc.message}") from None
    if static_checks:
        _check_private_access(ast, path)
        if variables is not None:
            used = meta.find_undeclared_variables(ast) - set(environment.globals)
            unknown = sorted(used - set(variables))
            if unknown:
                known = ", ".join(sorted(variables)) or "none"
                raise ConfigError(
                    path, f"unknown variable {unknown[0]!r} (the template may use: {known})"
                )
    return _compiled(mode, source)


@lru_cache(maxsize=512)
def _compiled(mode: str, source: str):
    return ENVIRONMENTS[mode].from_string(source)


def _check_private_access(ast, path: str) -> None:
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            name = node.arg.value
        else:
            continue
        if name.startswith("_"):
            raise ConfigError(path, f"line {node.lineno}: access to {name!r} is not allowed")


def render(template, values: dict, *, max_chars: int = MAX_RENDERED) -> str:
    """The rendered text; TemplateMissing or TemplateRefused when it cannot be."""
    out, size = [], 0
    try:
        for chunk in template.generate(values):
            size += len(chunk)
            if size > max_chars:
                raise TemplateRefused(f"the rendered text is longer than {max_chars} characters")
            out.append(chunk)
    except UndefinedError as exc:
        found = UNDEFINED_NAME.search(str(exc))
        names = [found.group(1)] if found and found.group(1) not in values else []
        raise TemplateMissing(str(exc), names) from None
    except SecurityError as exc:
        raise TemplateRefused(f"refused by the template sandbox: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateRefused(f"the template failed: {type(exc).__name__}: {exc}") from None
    return "".join(out)


def variables_of(template_source: str, mode: str = "text") -> set[str]:
    environment = ENVIRONMENTS[mode]
    return meta.find_undeclared_variables(environment.parse(template_source)) - set(
        environment.globals
    )
