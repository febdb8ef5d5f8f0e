"""The workflow diagram: well-formed SVG for every pattern, laid out in layers, pattern extras
drawn, every text escaped, nothing the CSP forbids, and no exception on a broken definition."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

import pytest

from agents.diagram import render

SVG = "{http://www.w3.org/2000/svg}"
NAMES = {1: "KYC table", 2: "Credit rules", 3: "Classifier", 4: "Human review", 5: "Writer"}


def step(key, role="step", after=(), agent=1, label="", when="", version=1):
    return {
        "key": key,
        "label": label or key.title(),
        "agent_id": agent,
        "agent_version": version,
        "role": role,
        "after": list(after),
        "when": when,
        "input_mapping": {},
    }


PATTERNS = {
    "sequential": {
        "pattern": "sequential",
        "steps": [step("kyc"), step("credit", after=["kyc"], agent=2)],
    },
    "concurrent": {
        "pattern": "concurrent",
        "steps": [
            step("kyc"),
            step("fraud", agent=3),
            step("credit", after=["kyc", "fraud"], agent=2),
        ],
    },
    "router": {
        "pattern": "router",
        "steps": [
            step("triage", "router", agent=3),
            step("billing", "route", ["triage"], 5, when="router.decision == 'billing'"),
            step("human", "default", ["triage"], 4),
        ],
    },
    "maker_checker": {
        "pattern": "maker_checker",
        "config": {"max_rounds": 4, "approve_decision": "ok"},
        "steps": [step("draft", "maker", agent=5), step("check", "checker", ["draft"], 4)],
    },
    "supervisor": {
        "pattern": "supervisor",
        "config": {"selection_field": "chosen"},
        "steps": [
            step("lead", "manager", agent=5),
            step("kyc", "specialist", ["lead"]),
            step("credit", "specialist", ["lead"], 2),
        ],
    },
    "conversation": {
        "pattern": "conversation",
        "config": {"stop_condition": "last.decision == 'agreed'", "max_turns": 8},
        "steps": [step("buyer", "participant", agent=5), step("seller", "participant", ["buyer"])],
    },
    "event_driven": {
        "pattern": "sequential",
        "steps": [step("kyc")],
        "triggers": [
            {"type": "webhook"},
            {"type": "schedule", "every_minutes": 90, "input": {}},
            {"type": "workflow", "workflow_id": 7, "outcome": "rejected"},
        ],
    },
}


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(f"{SVG}text")]


def titles(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter(f"{SVG}title")]


def node_boxes(root: ET.Element) -> list[tuple[float, float, float, float]]:
    """(x, y, width, height) of each step node (their white boxes are 212 x 70)."""
    return [
        tuple(float(r.get(k)) for k in ("x", "y", "width", "height"))
        for r in root.iter(f"{SVG}rect")
        if r.get("fill") == "#ffffff" and r.get("width") == "212"
    ]


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_every_pattern_draws_well_formed_svg(pattern):
    root = parse(render(PATTERNS[pattern], agent_names=NAMES, workflow_names={7: "Onboarding"}))
    assert re.fullmatch(r"0 0 \d+ \d+", root.get("viewBox"))
    assert root.get("role") == "img"
    shown = " ".join(texts(root) + titles(root))
    for s in PATTERNS[pattern]["steps"]:
        assert s["label"] in shown
        assert NAMES[s["agent_id"]] in shown
    assert len(node_boxes(root)) == len(PATTERNS[pattern]["steps"])


def test_steps_sit_in_layers_from_their_after_graph():
    root = parse(render(PATTERNS["concurrent"]))
    kyc, fraud, credit = node_boxes(root)
    assert kyc[1] == fraud[1]  # fan-out: side by side
    assert credit[1] > kyc[1]  # the join below both


def test_sequential_steps_go_down_the_page():
    definition = {
        "pattern": "sequential",
        "steps": [step(f"s{i}", after=[f"s{i - 1}"] if i else []) for i in range(5)],
    }
    ys = [box[1] for box in node_boxes(parse(render(definition)))]
    assert ys == sorted(ys)
    assert len(set(ys)) == 5


def test_router_edges_carry_their_conditions():
    shown = texts(parse(render(PATTERNS["router"])))
    assert "router.decision == 'billing'" in shown
    assert "otherwise" in shown
    assert "ROUTER" in shown
    assert "ROUTE" in shown


def test_the_maker_checker_loop_is_a_back_edge_with_its_round_limit():
    root = parse(render(PATTERNS["maker_checker"]))
    shown = " ".join(texts(root))
    assert "revise with feedback" in shown
    assert "max 4 rounds, then escalation" in shown
    assert "decision = ok" in shown
    assert any(p.get("stroke-dasharray") for p in root.iter(f"{SVG}path"))


def test_the_conversation_loop_names_its_stop_condition_and_turn_limit():
    shown = " ".join(texts(parse(render(PATTERNS["conversation"]))))
    assert "next turn" in shown
    assert "until last.decision == 'agreed'" in shown
    assert "max 8 turns, then escalation" in shown


def test_the_supervisor_hears_back_from_its_specialists():
    shown = " ".join(texts(parse(render(PATTERNS["supervisor"]))))
    assert "results back to the manager" in shown
    assert "picked by \u2018chosen\u2019" in shown


def test_triggers_are_entry_nodes():
    shown = texts(parse(render(PATTERNS["event_driven"], workflow_names={7: "Onboarding"})))
    assert "Start · form or API" in shown
    assert "Webhook call" in shown
    assert "Every 90 minutes" in shown
    assert "When \u2018Onboarding\u2019 ends rejected" in shown


def test_unpublished_agents_are_marked():
    definition = {"pattern": "sequential", "steps": [step("kyc", version=None)]}
    assert "KYC table · not published" in texts(parse(render(definition, agent_names=NAMES)))


MARKUP = "<script>alert('x')</script> & \"quotes\""


def test_every_text_is_escaped():
    definition = {
        "pattern": "router",
        "steps": [
            step("triage", "router", label=MARKUP),
            step("billing", "route", ["triage"], when=f"router.decision == '{MARKUP}'"),
        ],
        "triggers": [{"type": "workflow", "workflow_id": 1, "outcome": "completed"}],
    }
    svg = render(definition, agent_names={1: MARKUP}, workflow_names={1: MARKUP}, title=MARKUP)
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
    root = parse(svg)
    shown = titles(root)
    assert MARKUP in shown  # the whole title, as text
    assert any(MARKUP in t for t in shown[1:])


def test_nothing_the_csp_forbids():
    for definition in PATTERNS.values():
        svg = render(definition, agent_names=NAMES)
        assert " style=" not in svg
        assert "<style" not in svg
        assert "<script" not in svg
        assert "foreignObject" not in svg
        assert not re.search(r"\son[a-z]+=", svg)
        assert "href=" not in svg.replace("marker-end", "")


def test_two_diagrams_on_one_page_do_not_share_ids():
    one = render(PATTERNS["router"], id_prefix="old")
    two = render(PATTERNS["router"], id_prefix="new")
    ids_one = set(re.findall(r'id="([^"]+)"', one))
    ids_two = set(re.findall(r'id="([^"]+)"', two))
    assert ids_one
    assert not ids_one & ids_two


def test_fifteen_steps_fit_without_overlapping():
    definition = {
        "pattern": "concurrent",
        "steps": [
            step(f"s{i}", after=[f"s{i - 1}"] if i % 4 else [], label=f"Step number {i}")
            for i in range(15)
        ],
    }
    root = parse(render(definition, agent_names=NAMES))
    boxes = node_boxes(root)
    assert len(boxes) == 15
    for (x1, y1, w1, h1), (x2, y2, w2, h2) in itertools.combinations(boxes, 2):
        assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1
    width = int(root.get("width"))
    assert width < 1100  # four columns, readable in a page without scrolling


@pytest.mark.parametrize(
    "definition",
    [
        None,
        {},
        {"steps": "x"},
        {"pattern": "router", "steps": [1, None, {"key": 5}, {"after": "x"}]},
        {
            "pattern": "concurrent",
            "steps": [step("a", after=["b"]), step("b", after=["a"])],  # a cycle
        },
        {"pattern": "maker_checker", "steps": [step("only", "maker")]},
        {"pattern": "supervisor", "steps": [step("m", "manager")], "config": []},
        {"pattern": "sequential", "steps": [step("a")], "triggers": [{"type": "?"}, "x"]},
    ],
)
def test_a_broken_definition_still_draws(definition):
    parse(render(definition))


def test_long_labels_are_cut_with_the_whole_text_in_a_tooltip():
    label = "A very long step label that cannot fit in a node of the diagram"
    root = parse(render({"pattern": "sequential", "steps": [step("a", label=label)]}))
    assert any(t.endswith("…") and t[:-1] in label for t in texts(root))
    assert any(label in t for t in titles(root))
