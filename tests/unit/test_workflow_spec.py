"""Workflow definitions: every pattern validates, and each mistake is named where it is."""

import pytest

from agents.definitions import DefinitionError
from agents.workflow_spec import AgentInfo, validate_workflow_definition


def info(agent_id, name, inputs, outputs, published=1):
    return AgentInfo(
        id=agent_id,
        name=name,
        published_version=published,
        input_fields=[{"name": n, "type": "text", "required": True} for n in inputs],
        output_fields=[{"name": n, "type": "text", "required": True} for n in outputs],
    )


AGENTS = {
    1: info(1, "KYC", ["customer_id"], ["risk"]),
    2: info(2, "Credit", ["customer_id", "risk"], ["limit"]),
    3: info(3, "Draft", ["topic"], ["text"], published=None),
    4: info(4, "Writer", ["topic", "feedback"], ["text"]),
    5: info(5, "Reviewer", ["text"], ["comment"]),
}


def workflow(pattern, steps, **extra):
    return {
        "input_fields": [
            {"name": "customer_id", "type": "text"},
            {"name": "topic", "type": "text"},
        ],
        "pattern": pattern,
        "steps": steps,
        **extra,
    }


def check(definition, **kwargs):
    return validate_workflow_definition(definition, agents=AGENTS, **kwargs)


def error_of(definition, **kwargs) -> DefinitionError:
    with pytest.raises(DefinitionError) as caught:
        check(definition, **kwargs)
    return caught.value


def test_sequential_steps_wait_for_the_previous_one():
    result = check(
        workflow(
            "sequential",
            [
                {"key": "kyc", "agent_id": 1},
                {
                    "key": "credit",
                    "agent_id": 2,
                    "input_mapping": {"risk": "steps.kyc.output.risk"},
                },
            ],
        )
    )
    assert [s["after"] for s in result["steps"]] == [[], ["kyc"]]


def test_concurrent_fan_out_and_join():
    result = check(
        workflow(
            "concurrent",
            [
                {"key": "a", "agent_id": 1},
                {"key": "b", "agent_id": 1},
                {
                    "key": "join",
                    "agent_id": 2,
                    "after": ["a", "b"],
                    "input_mapping": {"risk": "steps.b.output.risk"},
                },
            ],
        )
    )
    assert result["steps"][2]["after"] == ["a", "b"]


def test_a_cycle_outside_a_loop_pattern_is_refused():
    error = error_of(
        workflow(
            "concurrent",
            [
                {"key": "a", "agent_id": 1, "after": ["b"]},
                {"key": "b", "agent_id": 1, "after": ["a"]},
            ],
        )
    )
    assert "cycle" in error.problem
    assert "maker-checker" in error.problem


def test_a_step_waiting_for_an_unknown_step_is_unreachable():
    error = error_of(
        workflow(
            "concurrent",
            [
                {"key": "a", "agent_id": 1},
                {"key": "b", "agent_id": 1, "after": ["nowhere"]},
            ],
        )
    )
    assert error.path == "steps[1].after"
    assert "unreachable" in error.problem


def test_an_unpublished_agent_is_refused_on_submit_but_not_in_a_draft():
    definition = workflow("sequential", [{"key": "d", "agent_id": 3}])
    assert check(definition)["steps"][0]["agent_version"] is None
    error = error_of(definition, for_submit=True)
    assert error.path == "steps[0].agent_id"
    assert "not published" in error.problem


def test_submission_pins_each_step_to_the_published_version():
    result = check(workflow("sequential", [{"key": "kyc", "agent_id": 1}]), for_submit=True)
    assert result["steps"][0]["agent_version"] == 1


def test_mapping_to_a_missing_field_is_named():
    error = error_of(
        workflow(
            "sequential",
            [
                {"key": "kyc", "agent_id": 1},
                {
                    "key": "credit",
                    "agent_id": 2,
                    "input_mapping": {"risk": "steps.kyc.output.score"},
                },
            ],
        )
    )
    assert error.path == "steps[1].input_mapping.risk"
    assert "no output field 'score'" in error.problem


def test_mapping_from_a_later_step_is_refused():
    error = error_of(
        workflow(
            "sequential",
            [
                {
                    "key": "credit",
                    "agent_id": 2,
                    "input_mapping": {"risk": "steps.kyc.output.risk"},
                },
                {"key": "kyc", "agent_id": 1},
            ],
        )
    )
    assert "has not run yet" in error.problem


def test_a_required_input_left_unmapped_is_named():
    error = error_of(workflow("sequential", [{"key": "credit", "agent_id": 2}]))
    assert "not mapped: risk" in error.problem


def test_router_routes_need_conditions_that_compile():
    steps = [
        {"key": "triage", "agent_id": 1, "role": "router"},
        {
            "key": "credit",
            "agent_id": 2,
            "role": "route",
            "input_mapping": {"risk": "steps.triage.output.risk"},
        },
    ]
    assert error_of(workflow("router", steps)).path == "steps[1].when"
    steps[1]["when"] = "router.decision == "
    assert "not a valid condition" in error_of(workflow("router", steps)).problem
    steps[1]["when"] = "colour == 'red'"
    assert "unknown name(s) colour" in error_of(workflow("router", steps)).problem
    steps[1]["when"] = "router.decision == 'credit'"
    assert check(workflow("router", steps))["steps"][1]["after"] == ["triage"]


def test_maker_checker_loops_with_feedback_and_a_round_limit():
    result = check(
        workflow(
            "maker_checker",
            [
                {
                    "key": "write",
                    "agent_id": 4,
                    "role": "maker",
                    "input_mapping": {"feedback": "context.feedback"},
                },
                {
                    "key": "review",
                    "agent_id": 5,
                    "role": "checker",
                    "input_mapping": {"text": "steps.write.output.text"},
                },
            ],
            config={"max_rounds": 4},
        )
    )
    assert result["config"] == {"max_rounds": 4, "approve_decision": "approve"}


def test_maker_checker_round_limit_is_bounded():
    error = error_of(
        workflow(
            "maker_checker",
            [
                {
                    "key": "write",
                    "agent_id": 4,
                    "role": "maker",
                    "input_mapping": {"feedback": "context.feedback"},
                },
                {
                    "key": "review",
                    "agent_id": 5,
                    "role": "checker",
                    "input_mapping": {"text": "steps.write.output.text"},
                },
            ],
            config={"max_rounds": 99},
        )
    )
    assert error.path == "config.max_rounds"


def test_context_values_belong_to_their_pattern():
    error = error_of(
        workflow(
            "sequential",
            [
                {"key": "write", "agent_id": 4, "input_mapping": {"feedback": "context.feedback"}},
            ],
        )
    )
    assert "no context value 'feedback'" in error.problem


def test_supervisor_and_conversation_shapes():
    supervisor = check(
        workflow(
            "supervisor",
            [
                {"key": "lead", "agent_id": 1, "role": "manager"},
                {
                    "key": "credit",
                    "agent_id": 2,
                    "role": "specialist",
                    "input_mapping": {"risk": "steps.lead.output.risk"},
                },
            ],
        )
    )
    assert supervisor["steps"][1]["after"] == ["lead"]
    conversation = workflow(
        "conversation",
        [
            {
                "key": "writer",
                "agent_id": 4,
                "role": "participant",
                "input_mapping": {"feedback": "steps.reviewer.output.comment"},
            },
            {
                "key": "reviewer",
                "agent_id": 5,
                "role": "participant",
                "input_mapping": {"text": "steps.writer.output.text"},
            },
        ],
    )
    assert error_of(conversation).path == "config.stop_condition"
    conversation["config"] = {"stop_condition": "last.decision == 'agreed'", "max_turns": 8}
    assert check(conversation)["config"]["max_turns"] == 8


def test_wrong_roles_and_duplicate_keys_are_named():
    assert error_of(workflow("router", [{"key": "a", "agent_id": 1, "role": "maker"}])).path == (
        "steps[0].role"
    )
    duplicate = workflow("sequential", [{"key": "a", "agent_id": 1}, {"key": "a", "agent_id": 1}])
    assert error_of(duplicate).path == "steps[1].key"


def test_triggers_webhook_schedule_and_another_workflow():
    result = check(
        workflow(
            "sequential",
            [{"key": "kyc", "agent_id": 1}],
            triggers=[
                {"type": "webhook"},
                {"type": "schedule", "every_minutes": "60", "input": {"customer_id": "C1"}},
                {"type": "workflow", "workflow_id": 7, "outcome": "rejected"},
            ],
        )
    )
    assert [t["type"] for t in result["triggers"]] == ["webhook", "schedule", "workflow"]
    bad = workflow(
        "sequential",
        [{"key": "kyc", "agent_id": 1}],
        triggers=[{"type": "schedule", "every_minutes": 0}],
    )
    assert error_of(bad).path == "triggers[0].every_minutes"


def test_an_unknown_agent_is_named():
    assert error_of(workflow("sequential", [{"key": "x", "agent_id": 99}])).path == (
        "steps[0].agent_id"
    )
