"""The demo content: published through four-eyes, and each demo workflow does what it shows."""

import pytest
from django.core.management import call_command

from agents.engine import runs
from agents.models import Agent, Run, Workflow
from console.demo import SAMPLE_INPUTS, seed_definitions
from governance.models import DecisionRecord
from tests.support.engine import drain

pytestmark = pytest.mark.django_db


@pytest.fixture
def flows(demo_people):
    return seed_definitions()


def run_sample(flow, data, people):
    run = runs.start(
        flow.published_version, data, actor=people["operator"], trigger=Run.Trigger.DEMO
    )
    return drain(run)


def test_every_kind_and_pattern_is_published_by_a_second_person(flows):
    assert set(Agent.objects.values_list("kind", flat=True)) == {"rules", "llm", "http", "human"}
    assert all(a.published_version for a in Agent.objects.all())
    assert set(flows) >= {
        "sequential",
        "concurrent",
        "router",
        "maker_checker",
        "supervisor",
        "conversation",
        "event_driven",
    }
    for record in DecisionRecord.objects.filter(event="definition.published"):
        assert record.actor_name == "approver"


def test_seed_demo_is_idempotent(demo_people):
    call_command("seed_demo")
    counts = (Agent.objects.count(), Workflow.objects.count())
    call_command("seed_demo")
    assert (Agent.objects.count(), Workflow.objects.count()) == counts


EXPECTED = [
    ("sequential", 0, "completed", lambda r: r.output == {"limit": 20000, "band": "A"}),
    ("sequential", 1, "completed", lambda r: r.output == {"limit": 0, "band": "none"}),
    ("sequential", 2, "low_confidence", None),
    ("concurrent", 0, "human_task", None),
    ("router", 0, "completed", lambda r: "invoice" in r.output["answer"]),
    ("router", 3, "out_of_scope", None),
    ("maker_checker", 0, "completed", lambda r: r.output["rounds"] == 2),
    ("supervisor", 0, "completed", lambda r: "Refund approved" in r.output["resolution"]),
    ("conversation", 0, "completed", lambda r: r.output == {"counter": 60, "turns": 4}),
    # Nothing listens on the demo base URL in tests: retries, then an escalation.
    ("event_driven", 0, "system_unavailable", None),
]


def test_demo_samples_show_what_they_are_for(flows, demo_people):
    # One seeding for every sample: seeding publishes about twenty definitions.
    for pattern, index, outcome, check in EXPECTED:
        run = run_sample(flows[pattern], SAMPLE_INPUTS[pattern][index], demo_people)
        where = f"{pattern} sample {index}"
        if outcome == "completed":
            assert (run.status, run.outcome) == (Run.Status.FINISHED, "completed"), where
            assert check(run), (where, run.output)
        else:
            assert run.status == Run.Status.WAITING, where
            escalation = run.escalations.get()
            assert escalation.kind == outcome, where
            if outcome == "system_unavailable":
                assert len(escalation.context["tried"]) == 3  # first attempt and two retries
    onboarded = Run.objects.filter(workflow=flows["sequential"]).order_by("created_at").first()
    [follower] = runs.start_followers(onboarded.pk)
    assert follower.workflow == flows["follow_up"]
    assert follower.input == {"customer_id": "C-1001"}
