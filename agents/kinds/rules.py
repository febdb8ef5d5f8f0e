"""The rules kind: a decision table of CEL conditions over the agent's input.

Configuration (the kind's section of a version's definition)::

    {"hit_policy": "unique" | "first" | "collect",          # "unique" when left out
     "rules": [{"condition": "input.amount < 1000 && input.country in ['DE', 'FR']",
                "outputs": {"limit": 1000}, "decision": "approve",
                "confidence": 0.9, "rationale": "...", "description": "..."}],
     "default": {"outputs": {...}, "decision": "...", "confidence": ..., "rationale": "..."}}

`validate_config` compiles every condition on save and refuses, naming the row and the column
(`rules[3].condition`, "row 4, condition: Syntax error at 1:12: ..."): syntax errors, names
other than `input.<declared input field>`, unknown functions, nested comprehensions, conditions
longer than 2,000 characters, types that cannot fit (found by a trial evaluation with a typical
value of each field's type, e.g. text compared with a number) and conditions that do not give
true or false; outputs naming undeclared fields or whose values do not fit the field's type; a
confidence outside [0, 1]; more than 500 rows; an unknown hit policy; an empty table without a
default; under `unique`, two rows with the same condition.

What a condition sees, per input field type:

- number: always a double (`input.amount * 2.0`, not `* 2`: CEL does no int/double arithmetic,
  though it compares them, so `input.amount < 1000` works). One type whatever the caller sent
  (1000 or 1000.0) keeps a table from working for some inputs and failing for others.
- date: the ISO text `YYYY-MM-DD`. ISO dates sort as text, so `input.due < '2025-01-01'` and
  `input.expiry <= input.applied_on` compare dates; for arithmetic, make a timestamp:
  `timestamp(input.due + 'T00:00:00Z') + duration('720h')`, `.getFullYear()`, ...
- text and choice: text; boolean: bool; json: the value as given (maps, lists, ...).
- an optional field that was not given is absent, so `has(input.vat_id)` tests for it.

Evaluation errors: a row whose condition reads an optional field that was not given raises
DataMissing naming the field (guard it with `has(input.x) && ...` if the row should simply not
match); any other evaluation error (a json value of the wrong shape, a division by zero, a
condition that gives something other than true or false) raises OutOfScope naming the row and
the error. Errors are never read as "no match", which would hide a broken row. Under `first`,
rows after the first match are not evaluated.

Hit policies:

- unique: exactly one row may match; two or more is a RuleConflict naming every matching row
  with its condition and outputs.
- first: the first matching row in table order.
- collect: every matching row. The Decision's output holds, for each output field, the list of
  the matching rows' values in row order (a field no matching row sets is left out), so
  declare collect outputs as json fields when a later step reads them as input; `decision` is
  the distinct row decisions joined with "; "; the confidence is the lowest of the rows' (the
  weakest match decides whether it escalates); the rationale has one line per row. Rows of a
  collect table need not set every required output field; rows of the other two must.

No row matching gives the default when there is one, otherwise OutOfScope listing the inputs the
conditions read. The Decision names the rows applied (`rules_applied`: row number, condition,
description) and the input values the evaluated conditions read (`data_considered`: the value
of each, None when not given; a field marked personal is named without its value, which stays in
the inputs, recorded in the ledger's encrypted personal part).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cel

from agents.conditions import (
    MAX_LENGTH,
    Condition,
    ConditionError,
    check_names,
    compile_condition,
)
from agents.engine.taxonomy import DataMissing, OutOfScope, RuleConflict
from agents.fields import Field, coerce_value, parse_fields
from agents.kinds.base import AgentSpec, Decision
from agents.kinds.config import ConfigError

HIT_POLICIES = ("unique", "first", "collect")
MAX_ROWS = 500
MAX_CONDITION = MAX_LENGTH
MAX_DECISION = 200
MAX_RATIONALE = 2_000
MAX_DESCRIPTION = 500
ROW_KEYS = ("condition", "outputs", "decision", "confidence", "rationale", "description")
DEFAULT_KEYS = ("outputs", "decision", "confidence", "rationale", "description")
TABLE_KEYS = ("hit_policy", "rules", "default")

# A typical value of each type for the trial evaluation on save (json values have no typical
# shape: rows reading a json field are not tried).
SAMPLE_VALUES = {"text": "", "number": 0.0, "boolean": False, "date": "2000-01-01"}
TYPE_WORDS = {
    "text": "text",
    "number": "a number (a double: write 2.0, not 2, in arithmetic)",
    "boolean": "true or false",
    "date": "a date as ISO text YYYY-MM-DD",
    "choice": "text (one of its choices)",
    "json": "JSON",
}


# --- Validation on save -----------------------------------------------------------------------


def validate_config(config, *, input_fields, output_fields) -> dict:
    """The normalised table, or ConfigError naming the row and the column of the first problem."""
    inputs = _as_fields(input_fields, "input_fields")
    outputs = _as_fields(output_fields, "output_fields")
    if not isinstance(config, dict):
        raise ConfigError("config", "a decision table: hit_policy, rules and an optional default")
    for key in config:
        if key not in TABLE_KEYS:
            raise ConfigError(
                str(key)[:60], "unknown setting; a decision table has hit_policy, rules, default"
            )
    policy = config.get("hit_policy") or "unique"
    if policy not in HIT_POLICIES:
        raise ConfigError(
            "hit_policy", f"hit policy: one of {', '.join(HIT_POLICIES)}; got {str(policy)[:40]!r}"
        )
    rows = config.get("rules") or []
    if not isinstance(rows, list):
        raise ConfigError("rules", "a list of rows")
    if len(rows) > MAX_ROWS:
        raise ConfigError("rules", f"at most {MAX_ROWS} rows (this table has {len(rows)})")
    default = config.get("default") or None
    if not rows and default is None:
        raise ConfigError(
            "rules", "the table has no rows: add a row, or a default that applies to any input"
        )
    normalised = [
        _validate_row(index, row, inputs, outputs, policy) for index, row in enumerate(rows)
    ]
    if policy == "unique":
        _refuse_duplicate_conditions(normalised)
    return {
        "hit_policy": policy,
        "rules": normalised,
        "default": None
        if default is None
        else _validate_outcome(default, "default", "default", outputs, policy, DEFAULT_KEYS),
    }


def _as_fields(fields, path: str) -> list[Field]:
    fields = list(fields or [])
    if all(isinstance(f, Field) for f in fields):
        return fields
    return parse_fields(fields, path)


def _validate_row(index: int, row, inputs, outputs, policy) -> dict:
    path, label = f"rules[{index}]", f"row {index + 1}"
    if not isinstance(row, dict):
        raise ConfigError(path, f"{label}: an object with a condition, outputs and a decision")
    condition = row.get("condition")
    if not isinstance(condition, str):
        condition = ""
    condition = condition.strip()
    try:
        compiled = compile_condition(condition)
        check_names(compiled, [f.name for f in inputs])
        _try_on_sample(compiled, inputs)
    except ConditionError as exc:
        raise ConfigError(f"{path}.condition", f"{label}, condition: {exc.problem}") from None
    outcome = _validate_outcome(row, path, label, outputs, policy, ROW_KEYS)
    return {"condition": condition, **outcome}


def _validate_outcome(data, path, label, outputs, policy, keys) -> dict:
    """The outputs, decision, confidence, rationale and description of a row or the default."""
    if not isinstance(data, dict):
        raise ConfigError(path, f"{label}: an object with outputs and a decision")
    for key in data:
        if key not in keys:
            raise ConfigError(
                f"{path}.{str(key)[:60]}",
                f"{label}, {str(key)[:60]}: unknown column; use {', '.join(keys)}",
            )
    given = data.get("outputs") or {}
    if not isinstance(given, dict):
        raise ConfigError(f"{path}.outputs", f"{label}, outputs: an object of output values")
    by_name = {f.name: f for f in outputs}
    values = {}
    for name, value in given.items():
        where = f"{path}.outputs.{str(name)[:60]}"
        if name not in by_name:
            listing = ", ".join(by_name) or "none"
            raise ConfigError(
                where,
                f"{label}, outputs.{str(name)[:60]}: not an output field of this agent "
                f"(output fields: {listing})",
            )
        if value is None or value == "":
            continue
        try:
            values[name] = coerce_value(by_name[name], value)
        except ValueError as exc:
            raise ConfigError(where, f"{label}, outputs.{name}: {exc}") from None
    if policy != "collect":
        for field in outputs:
            if field.required and field.name not in values:
                raise ConfigError(
                    f"{path}.outputs.{field.name}",
                    f"{label}, outputs.{field.name}: a required output field; give its value",
                )
    decision = _text(data, "decision", path, label, MAX_DECISION)
    if not decision:
        raise ConfigError(f"{path}.decision", f"{label}, decision: name the decision")
    return {
        "outputs": {f.name: values[f.name] for f in outputs if f.name in values},
        "decision": decision,
        "confidence": _confidence(data.get("confidence"), path, label),
        "rationale": _text(data, "rationale", path, label, MAX_RATIONALE),
        "description": _text(data, "description", path, label, MAX_DESCRIPTION),
    }


def _text(data: dict, key: str, path: str, label: str, limit: int) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{path}.{key}", f"{label}, {key}: text")
    if len(value) > limit:
        raise ConfigError(f"{path}.{key}", f"{label}, {key}: at most {limit} characters")
    return value.strip()


def _confidence(value, path: str, label: str) -> float:
    where, what = f"{path}.confidence", f"{label}, confidence"
    if value is None or value == "":
        return 1.0
    if isinstance(value, bool):
        raise ConfigError(where, f"{what}: a number between 0 and 1")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(where, f"{what}: a number between 0 and 1") from None
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise ConfigError(where, f"{what}: between 0 and 1; got {str(value)[:40]}")
    return number


def _refuse_duplicate_conditions(rows: list[dict]) -> None:
    first_seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        earlier = first_seen.setdefault(row["condition"], index)
        if earlier != index:
            raise ConfigError(
                f"rules[{index}].condition",
                f"row {index + 1}, condition: the same as row {earlier + 1}; under the unique "
                "hit policy both rows would always match together",
            )


def _try_on_sample(compiled, inputs: list[Field]) -> None:
    """Evaluate the condition once with a typical value of each field's type: a type mismatch
    (text compared with a number, int arithmetic on a number field) fails whatever the values,
    so it is refused now rather than at every run. Other errors depend on values (a division by
    zero on the sample) and are left to run time."""
    by_name = {f.name: f for f in inputs}
    read = [by_name[name] for name in compiled.fields]
    if any(f.type == "json" for f in read):
        return
    sample = {
        f.name: (f.choices[0] if f.type == "choice" else SAMPLE_VALUES[f.type])
        for f in inputs
        if f.type != "json"
    }
    try:
        result = compiled.program.execute({"input": sample})
    except TypeError as exc:
        types = "; ".join(f"input.{f.name} is {TYPE_WORDS[f.type]}" for f in read)
        reason = str(exc).split(". ")[0].rstrip(".")
        raise ConditionError(f"the types do not fit ({reason}). {types}") from None
    except RuntimeError as exc:
        if str(exc).startswith("Undefined variable or function"):
            raise ConditionError(str(exc).split(". ")[0]) from None
        return
    except Exception:  # value-dependent errors (a division by zero...) are run-time matters
        return
    if not isinstance(result, bool):
        raise ConditionError(f"gives {_kind_of(result)}, not true or false")


def _kind_of(value) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    if value is None:
        return "null"
    return type(value).__name__


# --- Execution --------------------------------------------------------------------------------


class RulesExecutor:
    def execute(self, spec: AgentSpec, inputs: dict) -> Decision:
        return evaluate(spec, inputs)


def evaluate(spec: AgentSpec, inputs: dict) -> Decision:
    """Run the table on validated inputs (`agents.kinds.base.run` validates them first)."""
    table = spec.config
    policy = table.get("hit_policy") or "unique"
    rows = table.get("rules") or []
    prepared = _prepare(tuple([row.get("condition", "") for row in rows]))
    values = _cel_values(spec.input_fields, inputs)
    # Converting the input to CEL values once per run, not once per row, is most of the speed.
    context = cel.Context(variables={"input": values})
    first = policy == "first"
    matches: list[int] = []
    index = -1
    for index, program in enumerate(prepared.programs):
        try:
            result = program.execute(context)
        except Exception as exc:  # each library error is classified there
            raise _evaluation_failed(
                index, prepared.conditions[index], values, exc, spec.input_fields
            ) from None
        if result is True:
            matches.append(index)
            if first:
                break
        elif result is not False:
            raise OutOfScope(
                f"row {index + 1}'s condition gave {_kind_of(result)}, not true or false",
                details={"row": index + 1, "condition": prepared.conditions[index].source},
            )
    read = prepared.read_through[index] if index >= 0 else ()
    considered = _data_considered(spec.input_fields, inputs, read)
    if policy == "unique" and len(matches) > 1:
        raise _conflict(rows, matches)
    if not matches:
        default = table.get("default")
        if default:
            return _from_default(default, policy, spec.output_fields, considered)
        raise OutOfScope(
            f"no row of the decision table matched; inputs considered: {_describe(considered)}",
            details={"hit_policy": policy, "rows": len(rows), "data_considered": considered},
        )
    if policy == "collect":
        return _collected(rows, matches, spec.output_fields, considered)
    index = matches[0]
    row = rows[index]
    which = "first row that" if first else "only row that"
    return Decision(
        output=dict(row.get("outputs") or {}),
        decision=row.get("decision"),
        confidence=float(row.get("confidence", 1.0)),
        rationale=row.get("rationale") or _generated_rationale(index, row, which),
        rules_applied=[_applied(index, row)],
        data_considered=considered,
    )


@dataclass(frozen=True)
class _Prepared:
    conditions: tuple[Condition, ...]
    programs: tuple[cel.Program, ...]
    read_through: tuple[tuple[str, ...], ...]  # the fields rows 0..i read, in order of use


@functools.lru_cache(maxsize=256)
def _prepare(sources: tuple[str, ...]) -> _Prepared:
    """A table's compiled rows, once per distinct table (so once per published version)."""
    compiled, read, read_through = [], [], []
    for index, source in enumerate(sources):
        try:
            condition = compile_condition(source)
        except ConditionError as exc:  # only a table saved without validate_config gets here
            raise OutOfScope(
                f"row {index + 1}'s condition does not compile: {exc.problem}",
                details={"row": index + 1, "condition": source},
            ) from None
        compiled.append(condition)
        read.extend(name for name in condition.fields if name not in read)
        read_through.append(tuple(read))
    return _Prepared(
        conditions=tuple(compiled),
        programs=tuple(c.program for c in compiled),
        read_through=tuple(read_through),
    )


def _cel_values(fields: list[Field], inputs: dict) -> dict:
    values = {}
    for field in fields:
        value = inputs.get(field.name)
        if value is None:
            continue  # absent, so has(input.x) is false
        if field.type == "number" and not isinstance(value, bool):
            value = float(value)
        elif field.type == "date" and hasattr(value, "isoformat"):
            value = value.isoformat()
        values[field.name] = value
    return values


def _evaluation_failed(index: int, compiled: Condition, values: dict, exc: Exception, fields):
    row = index + 1
    key = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
    if key in compiled.fields and key not in values:
        return DataMissing(
            f"row {row}'s condition reads input.{key}, which was not given (write "
            f"has(input.{key}) && ... if the row should not match without it)",
            missing=[key],
        )
    error = str(exc).split("\n")[0][:300] or type(exc).__name__
    if isinstance(exc, KeyError):
        error = f"no such key: {key}"
    personal = {f.name for f in fields if f.personal}
    if personal.intersection(compiled.fields):
        # The library's messages may quote values (a key, a regex, a duration text).
        error = f"{type(exc).__name__} (details withheld: the condition reads personal data)"
    return OutOfScope(
        f"row {row}'s condition could not be evaluated on this input: {error}",
        details={"row": row, "condition": compiled.source, "error": error},
    )


def _conflict(rows: list[dict], matches: list[int]) -> RuleConflict:
    stated = [
        {
            "row": index + 1,
            "condition": rows[index].get("condition", ""),
            "outputs": rows[index].get("outputs") or {},
            "decision": rows[index].get("decision"),
            "description": rows[index].get("description", ""),
        }
        for index in matches
    ]
    numbers = [str(rule["row"]) for rule in stated]
    listing = f"{', '.join(numbers[:-1])} and {numbers[-1]}"
    each = "; ".join(
        f"row {rule['row']} ({rule['condition']}) gives {rule['decision']!r}" for rule in stated
    )
    both = "both" if len(stated) == 2 else "all"
    return RuleConflict(
        f"rows {listing} {both} match under the unique hit policy: {each}", rules=stated
    )


def _collected(rows, matches, output_fields, considered) -> Decision:
    chosen = [(index, rows[index]) for index in matches]
    output = {}
    for field in output_fields:
        values = [
            row["outputs"][field.name]
            for _, row in chosen
            if field.name in (row.get("outputs") or {})
        ]
        if values:  # a field no matching row sets is left out, as under the other policies
            output[field.name] = values
    decisions = list(dict.fromkeys(row.get("decision") for _, row in chosen))
    lines = [
        f"row {index + 1}: {row.get('rationale') or _generated_rationale(index, row, 'row that')}"
        for index, row in chosen
    ]
    return Decision(
        output=output,
        decision="; ".join(str(d) for d in decisions if d),
        confidence=min(float(row.get("confidence", 1.0)) for _, row in chosen),
        rationale="\n".join(lines),
        rules_applied=[_applied(index, row) for index, row in chosen],
        data_considered=considered,
    )


def _from_default(default: dict, policy: str, output_fields, considered) -> Decision:
    outputs = dict(default.get("outputs") or {})
    if policy == "collect":
        outputs = {f.name: [outputs[f.name]] for f in output_fields if f.name in outputs}
    return Decision(
        output=outputs,
        decision=default.get("decision"),
        confidence=float(default.get("confidence", 1.0)),
        rationale=default.get("rationale") or "no row matched; the table's default applies",
        rules_applied=[
            {
                "row": "default",
                "condition": "",
                "description": default.get("description") or "no row matched",
            }
        ],
        data_considered=considered,
    )


def _generated_rationale(index: int, row: dict, which: str) -> str:
    about = f" ({row['description']})" if row.get("description") else ""
    return f"row {index + 1}{about} is the {which} matched: {row.get('condition', '')}"


def _applied(index: int, row: dict) -> dict:
    return {
        "row": index + 1,
        "condition": row.get("condition", ""),
        "description": row.get("description", ""),
    }


def _data_considered(fields: list[Field], inputs: dict, read: list[str]) -> list[dict]:
    considered = []
    for field in fields:
        if field.name not in read:
            continue
        if field.personal:
            considered.append({"field": field.name, "personal": True})
        else:
            considered.append({"field": field.name, "value": inputs.get(field.name)})
    return considered


def _describe(considered: list[dict]) -> str:
    if not considered:
        return "none (no condition reads the input)"
    parts = []
    for item in considered:
        if item.get("personal"):
            parts.append(f"{item['field']} (personal)")
        elif item["value"] is None:
            parts.append(f"{item['field']} not given")
        else:
            parts.append(f"{item['field']} = {_short(item['value'])}")
    return ", ".join(parts)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


EXECUTOR = RulesExecutor()
