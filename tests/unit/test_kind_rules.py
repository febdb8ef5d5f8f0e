"""The rules kind: decision tables of CEL conditions, run against the real CEL engine.

No database: executors touch none.
"""

from __future__ import annotations

import itertools

import pytest

from agents import conditions
from agents.engine.taxonomy import DataMissing, LowConfidence, OutOfScope, RuleConflict
from agents.fields import parse_fields
from agents.kinds import base, registry, rules
from agents.kinds.config import ConfigError

# --- Two realistic tables (the demo agents get their own copies from the demo data) ----------

KYC_INPUT_FIELDS = [
    {"name": "full_name", "type": "text", "personal": True},
    {"name": "customer_type", "type": "choice", "choices": ["individual", "company"]},
    {"name": "country", "type": "text", "description": "ISO 3166 alpha-2 residence"},
    {"name": "age", "type": "number", "required": False},
    {"name": "sanctions_hit", "type": "boolean"},
    {"name": "pep", "type": "boolean", "description": "politically exposed person"},
    {"name": "id_verified", "type": "boolean"},
    {"name": "id_expiry", "type": "date"},
    {"name": "applied_on", "type": "date"},
    {"name": "expected_monthly_volume", "type": "number"},
]
KYC_OUTPUT_FIELDS = [
    {"name": "risk_level", "type": "choice", "choices": ["low", "medium", "high"]},
    {"name": "due_diligence", "type": "choice", "choices": ["simplified", "standard", "enhanced"]},
]
KYC_TABLE = {
    "hit_policy": "first",
    "rules": [
        {
            "condition": "input.sanctions_hit",
            "outputs": {"risk_level": "high", "due_diligence": "enhanced"},
            "decision": "reject",
            "rationale": "The applicant matches a sanctions list entry.",
            "description": "sanctions screening hit",
        },
        {
            "condition": "input.country in ['IR', 'KP', 'MM']",
            "outputs": {"risk_level": "high", "due_diligence": "enhanced"},
            "decision": "reject",
            "description": "country under a call for action (FATF black list)",
        },
        {
            "condition": "!input.id_verified || input.id_expiry <= input.applied_on",
            "outputs": {"risk_level": "medium", "due_diligence": "standard"},
            "decision": "request_documents",
            "description": "identity document missing, unverified or expired",
        },
        {
            "condition": "input.customer_type == 'individual' && has(input.age) && input.age < 18",
            "outputs": {"risk_level": "medium", "due_diligence": "standard"},
            "decision": "reject",
            "description": "individual applicants must be adults",
        },
        {
            "condition": "input.pep",
            "outputs": {"risk_level": "high", "due_diligence": "enhanced"},
            "decision": "refer",
            "confidence": 0.6,
            "description": "politically exposed person: a compliance officer decides",
        },
        {
            "condition": "input.country in ['AE', 'PA', 'VN', 'ZA'] "
            "|| input.expected_monthly_volume > 50000",
            "outputs": {"risk_level": "medium", "due_diligence": "enhanced"},
            "decision": "approve",
            "confidence": 0.85,
            "description": "increased monitoring country or high expected volume",
        },
        {
            "condition": "true",
            "outputs": {"risk_level": "low", "due_diligence": "simplified"},
            "decision": "approve",
            "description": "standard customer",
        },
    ],
}
KYC_APPLICANT = {
    "full_name": "Ada Example",
    "customer_type": "individual",
    "country": "DE",
    "age": 34,
    "sanctions_hit": False,
    "pep": False,
    "id_verified": True,
    "id_expiry": "2031-05-01",
    "applied_on": "2026-01-15",
    "expected_monthly_volume": 4200,
}

CREDIT_INPUT_FIELDS = [
    {"name": "credit_score", "type": "number"},
    {"name": "debt_to_income", "type": "number", "description": "monthly debt / income"},
    {"name": "loan_amount", "type": "number"},
    {"name": "annual_income", "type": "number"},
    {
        "name": "employment_status",
        "type": "choice",
        "choices": ["employed", "self_employed", "unemployed", "retired"],
    },
    {"name": "existing_defaults", "type": "number"},
]
CREDIT_OUTPUT_FIELDS = [
    {"name": "risk_band", "type": "choice", "choices": ["A", "B", "C", "D"]},
    {"name": "max_loan", "type": "number"},
]
# Unique: the rows are disjoint and cover every input (tested below over a grid).
_CLEAN = "input.existing_defaults == 0 && input.employment_status != 'unemployed'"
_AFFORDABLE = "input.loan_amount <= input.annual_income * 0.5"
CREDIT_TABLE = {
    "hit_policy": "unique",
    "rules": [
        {
            "condition": "input.existing_defaults > 0 || input.employment_status == 'unemployed'",
            "outputs": {"risk_band": "D", "max_loan": 0},
            "decision": "decline",
            "description": "past defaults or no income from work",
        },
        {
            "condition": f"{_CLEAN} && input.credit_score < 580",
            "outputs": {"risk_band": "D", "max_loan": 0},
            "decision": "decline",
            "description": "credit score under 580",
        },
        {
            "condition": f"{_CLEAN} && input.credit_score >= 580 && input.credit_score < 680",
            "outputs": {"risk_band": "C", "max_loan": 5000},
            "decision": "refer",
            "confidence": 0.6,
            "description": "fair score: an underwriter decides",
        },
        {
            "condition": f"{_CLEAN} && input.credit_score >= 680 "
            f"&& (input.debt_to_income > 0.45 || !({_AFFORDABLE}))",
            "outputs": {"risk_band": "C", "max_loan": 10000},
            "decision": "refer",
            "confidence": 0.7,
            "description": "good score but stretched",
        },
        {
            "condition": f"{_CLEAN} && input.credit_score >= 680 && input.credit_score < 750 "
            f"&& input.debt_to_income <= 0.45 && {_AFFORDABLE}",
            "outputs": {"risk_band": "B", "max_loan": 25000},
            "decision": "approve",
            "confidence": 0.9,
            "rationale": "Good score, affordable: approved up to 25,000.",
        },
        {
            "condition": f"{_CLEAN} && input.credit_score >= 750 "
            f"&& input.debt_to_income <= 0.45 && {_AFFORDABLE}",
            "outputs": {"risk_band": "A", "max_loan": 50000},
            "decision": "approve",
            "rationale": "Excellent score, affordable: approved up to 50,000.",
        },
    ],
}


# --- Helpers -----------------------------------------------------------------------------------

SIMPLE_INPUTS = [
    {"name": "amount", "type": "number"},
    {"name": "country", "type": "text"},
    {"name": "vat_id", "type": "text", "required": False},
    {"name": "details", "type": "json", "required": False},
    {"name": "birth_date", "type": "date", "required": False, "personal": True},
]
SIMPLE_OUTPUTS = [
    {"name": "limit", "type": "number"},
    {"name": "note", "type": "text", "required": False},
]


def make_spec(table, *, inputs=SIMPLE_INPUTS, outputs=SIMPLE_OUTPUTS, threshold=0.0):
    config = rules.validate_config(table, input_fields=inputs, output_fields=outputs)
    return base.AgentSpec.from_definition(
        {
            "kind": "rules",
            "input_fields": inputs,
            "output_fields": outputs,
            "confidence_threshold": threshold,
            "config": config,
        },
        agent_id="a1",
        name="table",
        version=1,
    )


def row(condition, limit=100, decision="approve", **extra):
    return {"condition": condition, "outputs": {"limit": limit}, "decision": decision, **extra}


def config_error(table, *, inputs=SIMPLE_INPUTS, outputs=SIMPLE_OUTPUTS) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        rules.validate_config(table, input_fields=inputs, output_fields=outputs)
    return caught.value


# --- Hit policies ------------------------------------------------------------------------------


def test_unique_policy_returns_the_only_matching_row():
    spec = make_spec(
        {
            "hit_policy": "unique",
            "rules": [
                row("input.amount < 1000", 1000, "approve", description="small amounts"),
                row("input.amount >= 1000", 0, "refer"),
            ],
        }
    )
    decision = base.run(spec, {"amount": "250", "country": "DE"})
    assert decision.output == {"limit": 1000}
    assert decision.decision == "approve"
    assert decision.confidence == 1.0
    assert decision.rationale == (
        "row 1 (small amounts) is the only row that matched: input.amount < 1000"
    )
    assert decision.rules_applied == [
        {"row": 1, "condition": "input.amount < 1000", "description": "small amounts"}
    ]
    assert decision.data_considered == [{"field": "amount", "value": 250}]
    assert decision.latency_ms > 0


def test_unique_conflict_names_both_rows_with_their_conditions_and_outputs():
    spec = make_spec(
        {
            "rules": [
                row("input.amount < 1000", 1000, "approve"),
                row("input.country == 'FR'", 10, "refer"),
                row("input.amount < 5000 && input.country == 'FR'", 20, "refer"),
            ]
        }
    )
    with pytest.raises(RuleConflict) as caught:
        rules.EXECUTOR.execute(spec, {"amount": 3000, "country": "FR"})
    conflict = caught.value
    assert conflict.rules == [
        {
            "row": 2,
            "condition": "input.country == 'FR'",
            "outputs": {"limit": 10},
            "decision": "refer",
            "description": "",
        },
        {
            "row": 3,
            "condition": "input.amount < 5000 && input.country == 'FR'",
            "outputs": {"limit": 20},
            "decision": "refer",
            "description": "",
        },
    ]
    assert "rows 2 and 3 both match under the unique hit policy" in conflict.message
    assert "input.country == 'FR'" in conflict.message
    assert conflict.context()["rules"] == conflict.rules


def test_unique_conflict_of_three_rows_names_all_three():
    spec = make_spec({"rules": [row("true", 1), row("input.amount > 0", 2), row("1 == 1", 3)]})
    with pytest.raises(RuleConflict) as caught:
        rules.EXECUTOR.execute(spec, {"amount": 5, "country": "DE"})
    assert [r["row"] for r in caught.value.rules] == [1, 2, 3]
    assert "rows 1, 2 and 3 all match" in caught.value.message


def test_first_policy_returns_the_first_matching_row_and_stops_there():
    spec = make_spec(
        {
            "hit_policy": "first",
            "rules": [
                row("input.amount > 10000", 0, "reject"),
                row("input.amount > 100", 500, "refer"),
                row("input.amount > 50", 900, "approve"),
                # never evaluated when an earlier row matched: its error does not surface
                row("input.details.score > 1", 1, "never"),
            ],
        }
    )
    decision = rules.EXECUTOR.execute(spec, {"amount": 200, "country": "DE"})
    assert decision.decision == "refer"
    assert decision.output == {"limit": 500}
    assert [r["row"] for r in decision.rules_applied] == [2]
    assert "row 2 is the first row that matched" in decision.rationale
    assert decision.data_considered == [{"field": "amount", "value": 200}]


def test_collect_policy_lists_each_output_decisions_and_takes_the_lowest_confidence():
    spec = make_spec(
        {
            "hit_policy": "collect",
            "rules": [
                row("input.amount > 1000", 1, "large_amount", confidence=0.9),
                {
                    "condition": "input.country == 'IR'",
                    "decision": "high_risk_country",
                    "outputs": {"note": "sanctions programme"},
                    "confidence": 0.7,
                    "rationale": "Iran is under a call for action.",
                },
                row("input.amount > 10", 3, "large_amount"),
                row("input.amount < 0", 4, "negative"),
            ],
        }
    )
    decision = rules.EXECUTOR.execute(spec, {"amount": 5000, "country": "IR"})
    assert decision.output == {"limit": [1, 3], "note": ["sanctions programme"]}
    only_amounts = rules.EXECUTOR.execute(spec, {"amount": 5000, "country": "DE"})
    assert only_amounts.output == {"limit": [1, 3]}  # note: set by no matching row
    assert decision.decision == "large_amount; high_risk_country"
    assert decision.confidence == 0.7
    assert [r["row"] for r in decision.rules_applied] == [1, 2, 3]
    assert decision.rationale.splitlines()[1] == "row 2: Iran is under a call for action."


# --- No match, default, low confidence ---------------------------------------------------------


def test_no_matching_row_is_out_of_scope_listing_the_inputs_considered():
    spec = make_spec({"rules": [row("input.amount < 1000 && input.country == 'DE'")]})
    with pytest.raises(OutOfScope) as caught:
        base.run(spec, {"amount": 5000, "country": "US", "birth_date": "1980-02-03"})
    failure = caught.value
    assert failure.message == (
        "no row of the decision table matched; inputs considered: amount = 5000, country = 'US'"
    )
    assert failure.details["data_considered"] == [
        {"field": "amount", "value": 5000},
        {"field": "country", "value": "US"},
    ]


def test_default_applies_when_no_row_matches():
    spec = make_spec(
        {
            "rules": [row("input.amount < 1000")],
            "default": {"outputs": {"limit": 0}, "decision": "refer", "confidence": 0.5},
        }
    )
    decision = rules.EXECUTOR.execute(spec, {"amount": 5000, "country": "US"})
    assert decision.output == {"limit": 0}
    assert decision.decision == "refer"
    assert decision.confidence == 0.5
    assert decision.rationale == "no row matched; the table's default applies"
    assert decision.rules_applied[0]["row"] == "default"


def test_a_table_of_only_a_default_always_gives_it():
    spec = make_spec({"rules": [], "default": {"outputs": {"limit": 7}, "decision": "ok"}})
    assert rules.EXECUTOR.execute(spec, {"amount": 1, "country": "DE"}).output == {"limit": 7}


def test_collect_default_gives_lists_like_the_rows_and_leaves_out_unset_fields():
    spec = make_spec(
        {
            "hit_policy": "collect",
            "rules": [row("input.amount > 1")],
            "default": {"decision": "no flags", "outputs": {"note": "clean"}},
        }
    )
    decision = rules.EXECUTOR.execute(spec, {"amount": 0, "country": "DE"})
    assert decision.output == {"note": ["clean"]}  # limit: set by no row, so left out
    assert decision.decision == "no flags"


def test_row_under_the_confidence_threshold_is_low_confidence_with_its_option():
    spec = make_spec(
        {"rules": [row("input.amount > 100", 50, "refer", confidence=0.6, rationale="unsure")]},
        threshold=0.8,
    )
    with pytest.raises(LowConfidence) as caught:
        base.run(spec, {"amount": 500, "country": "DE"})
    failure = caught.value
    assert failure.confidence == 0.6
    assert failure.threshold == 0.8
    assert failure.options == [
        {"decision": "refer", "confidence": 0.6, "output": {"limit": 50}, "rationale": "unsure"}
    ]
    assert failure.decision.rules_applied[0]["row"] == 1


# --- Inputs: bad, missing, typed ---------------------------------------------------------------


def test_bad_input_is_data_missing_before_any_row_runs():
    spec = make_spec({"rules": [row("input.amount > 1")]})
    with pytest.raises(DataMissing) as caught:
        base.run(spec, {"amount": "lots"})
    assert caught.value.missing == ["country"]
    assert "amount" in caught.value.invalid


def test_condition_reading_an_optional_input_not_given_is_data_missing_naming_it():
    spec = make_spec({"rules": [row("input.vat_id.startsWith('DE')")]})
    with pytest.raises(DataMissing) as caught:
        base.run(spec, {"amount": 1, "country": "DE"})
    assert caught.value.missing == ["vat_id"]
    assert "has(input.vat_id)" in caught.value.message


def test_optional_input_guarded_with_has_simply_does_not_match():
    spec = make_spec(
        {
            "hit_policy": "first",
            "rules": [
                row("has(input.vat_id) && input.vat_id.startsWith('DE')", 1, "business"),
                row("true", 2, "consumer"),
            ],
        }
    )
    assert base.run(spec, {"amount": 1, "country": "DE"}).decision == "consumer"
    given = base.run(spec, {"amount": 1, "country": "DE", "vat_id": "DE123"})
    assert given.decision == "business"
    assert given.data_considered == [{"field": "vat_id", "value": "DE123"}]


def test_evaluation_error_other_than_a_missing_input_is_out_of_scope_naming_the_row():
    spec = make_spec({"rules": [row("input.amount > 0 && input.details.score > 600")]})
    with pytest.raises(OutOfScope) as caught:
        base.run(spec, {"amount": 1, "country": "DE", "details": {"rating": "AA"}})
    assert caught.value.message.startswith("row 1's condition could not be evaluated")
    assert caught.value.details["error"] == "no such key: score"
    with pytest.raises(OutOfScope) as caught:
        base.run(spec, {"amount": 1, "country": "DE", "details": {"score": "high"}})
    assert "row 1" in caught.value.message


def test_evaluation_error_on_personal_data_does_not_quote_it():
    inputs = [*SIMPLE_INPUTS, {"name": "name", "type": "text", "personal": True}]
    spec = make_spec({"rules": [row("input.details[input.name] > 1")]}, inputs=inputs)
    with pytest.raises(OutOfScope) as caught:
        base.run(spec, {"amount": 1, "country": "DE", "name": "Ada Example", "details": {}})
    assert "Ada" not in caught.value.message
    assert "Ada" not in str(caught.value.context())
    assert "details withheld" in caught.value.message


def test_table_saved_without_validation_fails_as_out_of_scope_naming_the_row():
    spec = make_spec({"rules": [row("true")]})
    broken = base.AgentSpec.from_definition(
        {
            "kind": "rules",
            "input_fields": SIMPLE_INPUTS,
            "output_fields": SIMPLE_OUTPUTS,
            "config": {**spec.config, "rules": [*spec.config["rules"], row("input.amount <")]},
        }
    )
    with pytest.raises(OutOfScope) as caught:
        base.run(broken, {"amount": 1, "country": "DE"})
    assert caught.value.message.startswith("row 2's condition does not compile: Syntax error")


def test_condition_giving_a_non_boolean_at_run_time_is_out_of_scope():
    spec = make_spec({"rules": [row("input.details.flag")]})  # json: not tried on save
    with pytest.raises(OutOfScope) as caught:
        base.run(spec, {"amount": 1, "country": "DE", "details": {"flag": "yes"}})
    assert "gave text, not true or false" in caught.value.message


def test_numbers_are_doubles_whatever_the_caller_sent():
    spec = make_spec({"rules": [row("input.amount * 2.0 > 3.0 && input.amount == 2")]})
    for amount in (2, 2.0, "2"):
        assert base.run(spec, {"amount": amount, "country": "DE"}).decision == "approve"


def test_dates_are_iso_text_and_convert_to_timestamps():
    spec = make_spec(
        {
            "hit_policy": "collect",
            "rules": [
                row("input.birth_date < '2000-01-01'", 1, "born_before_2000"),
                row("timestamp(input.birth_date + 'T00:00:00Z').getFullYear() == 1990", 2, "1990"),
            ],
        }
    )
    decision = base.run(spec, {"amount": 1, "country": "DE", "birth_date": "1990-06-30"})
    assert decision.decision == "born_before_2000; 1990"
    # personal fields are named, their values stay in the (encrypted) inputs
    assert decision.data_considered == [{"field": "birth_date", "personal": True}]


# --- Validation on save: every error names the row and the column ------------------------------


def test_syntax_error_names_row_column_position_and_shows_a_caret():
    error = config_error({"rules": [row("true", decision="a"), row("input.amount <")]})
    assert error.path == "rules[1].condition"
    assert error.problem.splitlines() == [
        "row 2, condition: Syntax error at 1:15: the condition ends too early, "
        "expecting a value, a name or an opening bracket",
        "| input.amount <",
        "| ..............^",
    ]


def test_syntax_error_suggests_the_cel_operator_for_a_word():
    error = config_error({"rules": [row("input.amount > 1 and input.country == 'DE'")]})
    assert error.problem.startswith("row 1, condition: Syntax error at 1:18: unexpected 'and'")
    assert "(write && for and)" in error.problem


def test_unknown_variable_is_refused_naming_it():
    error = config_error({"rules": [row("amount > 1")]})
    assert error.path == "rules[0].condition"
    assert error.problem == (
        "row 1, condition: unknown name 'amount': a condition reads the agent's input fields "
        "as input.<field>; did you mean input.amount?"
    )


def test_undeclared_input_field_is_refused_naming_it_with_a_suggestion():
    error = config_error({"rules": [row("true", decision="x"), row("input.amout > 1")]})
    assert error.path == "rules[1].condition"
    assert error.problem.startswith(
        "row 2, condition: input.amout is not an input field of this agent; "
        "did you mean input.amount?"
    )


def test_dynamic_access_to_the_input_is_refused():
    error = config_error({"rules": [row("input[input.country] > 1")]})
    assert "read input fields by name, as input.<field>" in error.problem


def test_unknown_function_is_refused():
    error = config_error({"rules": [row("input.country.lowerAscii() == 'de'")]})
    assert error.problem.startswith("row 1, condition: unknown function 'lowerAscii'")


def test_nested_comprehensions_are_refused():
    error = config_error(
        {"rules": [row("[1, 2].exists(x, [3, 4].exists(y, x * y == input.amount))")]}
    )
    assert "cannot be nested" in error.problem


def test_type_mismatch_is_found_on_save_by_a_trial_evaluation():
    error = config_error({"rules": [row("input.amount > '1000'")]})
    assert error.path == "rules[0].condition"
    assert error.problem.startswith("row 1, condition: the types do not fit")
    assert "input.amount is a number" in error.problem
    error = config_error({"rules": [row("input.amount * 2 > 10.0")]})
    assert "float * int" in error.problem


def test_condition_that_is_not_true_or_false_is_refused():
    error = config_error({"rules": [row("input.amount + 1.0")]})
    assert error.problem == "row 1, condition: gives a number, not true or false"


def test_empty_condition_is_refused():
    error = config_error({"rules": [row("  ")]})
    assert error.path == "rules[0].condition"
    assert "write a condition" in error.problem


def test_condition_over_2000_characters_is_refused():
    long = " || ".join(["input.amount == 1"] * 120)
    error = config_error({"rules": [row(long)]})
    assert error.problem.startswith("row 1, condition: at most 2000 characters")


def test_unknown_output_field_is_refused_naming_row_and_column():
    error = config_error(
        {
            "rules": [
                row("true", 1),
                {"condition": "false", "decision": "x", "outputs": {"limit": 1, "limt": 2}},
            ]
        }
    )
    assert error.path == "rules[1].outputs.limt"
    assert error.problem == (
        "row 2, outputs.limt: not an output field of this agent (output fields: limit, note)"
    )


def test_output_value_of_the_wrong_type_is_refused_naming_row_and_column():
    error = config_error({"rules": [row("true", 1), row("false", "a lot")]})
    assert error.path == "rules[1].outputs.limit"
    assert error.problem == "row 2, outputs.limit: expected a number, got 'a lot'"


def test_missing_required_output_is_refused_except_under_collect():
    table = {"rules": [{"condition": "true", "decision": "x", "outputs": {"note": "n"}}]}
    error = config_error(table)
    assert error.path == "rules[0].outputs.limit"
    assert "required output field" in error.problem
    rules.validate_config(
        {**table, "hit_policy": "collect"},
        input_fields=SIMPLE_INPUTS,
        output_fields=SIMPLE_OUTPUTS,
    )


@pytest.mark.parametrize("confidence", [1.5, -0.1, "high", True, float("nan")])
def test_confidence_outside_zero_to_one_is_refused(confidence):
    error = config_error({"rules": [row("true", confidence=confidence)]})
    assert error.path == "rules[0].confidence"
    assert error.problem.startswith("row 1, confidence: ")


def test_default_errors_name_the_default():
    error = config_error(
        {"rules": [row("true")], "default": {"decision": "x", "outputs": {"limit": "x"}}}
    )
    assert error.path == "default.outputs.limit"
    assert error.problem.startswith("default, outputs.limit: expected a number")


def test_more_than_500_rows_is_refused():
    error = config_error({"hit_policy": "first", "rules": [row("true")] * 501})
    assert error.path == "rules"
    assert error.problem == "at most 500 rows (this table has 501)"


def test_empty_table_without_a_default_is_refused():
    error = config_error({"hit_policy": "first", "rules": []})
    assert error.path == "rules"
    assert "no rows" in error.problem


def test_unknown_hit_policy_is_refused():
    error = config_error({"hit_policy": "any", "rules": [row("true")]})
    assert error.path == "hit_policy"
    assert error.problem == "hit policy: one of unique, first, collect; got 'any'"


def test_unknown_column_is_refused():
    error = config_error({"rules": [{**row("true"), "ouputs": {}}]})
    assert error.path == "rules[0].ouputs"
    assert error.problem.startswith("row 1, ouputs: unknown column")


def test_missing_decision_is_refused():
    error = config_error({"rules": [{"condition": "true", "outputs": {"limit": 1}}]})
    assert error.path == "rules[0].decision"


def test_same_condition_twice_under_unique_is_refused():
    error = config_error({"rules": [row("input.amount > 1"), row("input.amount > 1", 2)]})
    assert error.path == "rules[1].condition"
    assert "the same as row 1" in error.problem


def test_validation_returns_the_normalised_table():
    config = rules.validate_config(
        {
            "rules": [
                {
                    "condition": "  input.amount > 1 ",
                    "outputs": {"limit": "12", "note": ""},
                    "decision": " approve ",
                    "confidence": "0.75",
                }
            ]
        },
        input_fields=parse_fields(SIMPLE_INPUTS, "input_fields"),
        output_fields=parse_fields(SIMPLE_OUTPUTS, "output_fields"),
    )
    assert config == {
        "hit_policy": "unique",
        "rules": [
            {
                "condition": "input.amount > 1",
                "outputs": {"limit": 12},
                "decision": "approve",
                "confidence": 0.75,
                "rationale": "",
                "description": "",
            }
        ],
        "default": None,
    }


def test_registry_dispatches_to_the_rules_kind():
    config = registry.validate_config(
        "rules", KYC_TABLE, input_fields=KYC_INPUT_FIELDS, output_fields=KYC_OUTPUT_FIELDS
    )
    assert len(config["rules"]) == len(KYC_TABLE["rules"])
    assert registry.executor_for("rules") is rules.EXECUTOR


def test_conditions_compile_once_per_text():
    conditions.compile_condition.cache_clear()
    spec = make_spec({"rules": [row("input.amount > 1"), row("input.amount <= 1", 2)]})
    for amount in range(20):
        rules.EXECUTOR.execute(spec, {"amount": amount, "country": "DE"})
    info = conditions.compile_condition.cache_info()
    assert info.misses == 2


# --- The two realistic tables ------------------------------------------------------------------


def kyc_spec(threshold=0.8):
    return make_spec(
        KYC_TABLE, inputs=KYC_INPUT_FIELDS, outputs=KYC_OUTPUT_FIELDS, threshold=threshold
    )


def test_kyc_standard_applicant_is_approved_with_simplified_due_diligence():
    decision = base.run(kyc_spec(), KYC_APPLICANT)
    assert decision.decision == "approve"
    assert decision.output == {"risk_level": "low", "due_diligence": "simplified"}
    assert decision.rules_applied[0]["row"] == 7
    considered = {item["field"] for item in decision.data_considered}
    assert "full_name" not in considered  # no condition reads it


def test_kyc_sanctions_hit_is_rejected_first():
    decision = base.run(kyc_spec(), {**KYC_APPLICANT, "sanctions_hit": True, "pep": True})
    assert decision.decision == "reject"
    assert decision.rationale == "The applicant matches a sanctions list entry."


def test_kyc_expired_document_requests_documents():
    expired = {**KYC_APPLICANT, "id_expiry": "2025-12-31"}
    assert base.run(kyc_spec(), expired).decision == "request_documents"


def test_kyc_minor_is_rejected_and_a_company_without_age_is_not():
    assert base.run(kyc_spec(), {**KYC_APPLICANT, "age": 17}).decision == "reject"
    company = {**KYC_APPLICANT, "customer_type": "company", "age": None}
    assert base.run(kyc_spec(), company).decision == "approve"


def test_kyc_politically_exposed_person_escalates_as_low_confidence():
    with pytest.raises(LowConfidence) as caught:
        base.run(kyc_spec(), {**KYC_APPLICANT, "pep": True})
    assert caught.value.options[0]["decision"] == "refer"
    assert caught.value.options[0]["output"]["due_diligence"] == "enhanced"


def test_kyc_high_volume_gets_enhanced_due_diligence():
    decision = base.run(kyc_spec(), {**KYC_APPLICANT, "expected_monthly_volume": 80000})
    assert decision.output == {"risk_level": "medium", "due_diligence": "enhanced"}
    assert decision.confidence == 0.85


def credit_spec(threshold=0.8):
    return make_spec(
        CREDIT_TABLE,
        inputs=CREDIT_INPUT_FIELDS,
        outputs=CREDIT_OUTPUT_FIELDS,
        threshold=threshold,
    )


def test_credit_table_is_complete_and_unambiguous_over_a_grid():
    spec = credit_spec(threshold=0.0)
    grid = itertools.product(
        [300, 579, 580, 679, 680, 749, 750, 850],
        [0.1, 0.45, 0.46],
        [1000, 60000],
        ["employed", "self_employed", "unemployed", "retired"],
        [0, 1],
    )
    bands = set()
    for score, dti, amount, status, defaults in grid:
        decision = base.run(
            spec,
            {
                "credit_score": score,
                "debt_to_income": dti,
                "loan_amount": amount,
                "annual_income": 100000,
                "employment_status": status,
                "existing_defaults": defaults,
            },
        )
        assert len(decision.rules_applied) == 1
        bands.add(decision.output["risk_band"])
    assert bands == {"A", "B", "C", "D"}


def test_credit_excellent_affordable_applicant_gets_band_a():
    decision = base.run(
        credit_spec(),
        {
            "credit_score": 790,
            "debt_to_income": 0.2,
            "loan_amount": 30000,
            "annual_income": 90000,
            "employment_status": "employed",
            "existing_defaults": 0,
        },
    )
    assert decision.output == {"risk_band": "A", "max_loan": 50000}
    assert decision.decision == "approve"
    assert [item["field"] for item in decision.data_considered] == [
        "credit_score",
        "debt_to_income",
        "loan_amount",
        "annual_income",
        "employment_status",
        "existing_defaults",
    ]


def test_credit_fair_score_is_referred_to_an_underwriter_as_low_confidence():
    with pytest.raises(LowConfidence) as caught:
        base.run(
            credit_spec(),
            {
                "credit_score": 620,
                "debt_to_income": 0.3,
                "loan_amount": 3000,
                "annual_income": 40000,
                "employment_status": "employed",
                "existing_defaults": 0,
            },
        )
    assert caught.value.options[0]["output"] == {"risk_band": "C", "max_loan": 5000}


def test_credit_overlapping_edit_is_a_rule_conflict_naming_both_rows():
    table = {
        **CREDIT_TABLE,
        "rules": [
            *CREDIT_TABLE["rules"],
            {
                "condition": "input.credit_score >= 800",
                "outputs": {"risk_band": "A", "max_loan": 80000},
                "decision": "approve",
                "description": "premium",
            },
        ],
    }
    spec = make_spec(table, inputs=CREDIT_INPUT_FIELDS, outputs=CREDIT_OUTPUT_FIELDS)
    with pytest.raises(RuleConflict) as caught:
        base.run(
            spec,
            {
                "credit_score": 820,
                "debt_to_income": 0.1,
                "loan_amount": 1000,
                "annual_income": 90000,
                "employment_status": "retired",
                "existing_defaults": 0,
            },
        )
    assert [r["row"] for r in caught.value.rules] == [6, 7]
    assert caught.value.rules[1]["outputs"] == {"risk_band": "A", "max_loan": 80000}
