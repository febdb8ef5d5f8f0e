"""After a step: which steps are ready next, by pattern. Runs inside the transaction that
records the step's outcome, with the run row locked, so joins are counted exactly once."""

from __future__ import annotations

import logging

from agents.engine import dispatch, escalations, rows, runs
from agents.engine.mapping import step_input
from agents.engine.records import append_step
from agents.engine.taxonomy import DataMissing, HandoffError, OutOfScope
from agents.fields import parse_fields, validate_values
from agents.models import AgentVersion, Run, StepRun

log = logging.getLogger(__name__)

DONE = (StepRun.Status.SUCCEEDED, StepRun.Status.RESOLVED)


def definition_of(run: Run) -> dict:
    return run.workflow_version.definition


def step_def(run: Run, key: str) -> dict:
    for step in definition_of(run)["steps"]:
        if step["key"] == key:
            return step
    raise KeyError(key)


OPEN = (
    StepRun.Status.QUEUED,
    StepRun.Status.RUNNING,
    StepRun.Status.WAITING,
    StepRun.Status.ESCALATED,
)


def latest_outputs(run: Run) -> dict[str, dict]:
    """Per step key, the result of its latest finished activation."""
    return run_state(run)[0]


def run_state(run: Run) -> tuple[dict[str, dict], set[str], bool]:
    """In one query: `latest_outputs`, the step keys that have a step run, and whether any
    step run is still open (queued, running, waiting or escalated)."""
    outputs: dict[str, dict] = {}
    existing: set[str] = set()
    open_work = False
    for status, key, output, decision, confidence, rationale in rows.step_results(run.pk):
        existing.add(key)
        if status in DONE:
            outputs[key] = {
                "output": output or {},
                "decision": decision,
                "confidence": confidence,
                "rationale": rationale,
            }
        elif status in OPEN:
            open_work = True
    return outputs, existing, open_work


def _agent_version(step: dict) -> AgentVersion:
    return rows.agent_version(step["agent_id"], step["agent_version"])


def create_step_run(run: Run, step: dict, *, activation: int = 0, outputs=None) -> StepRun:
    """Queue the step's first attempt with its mapped input, or record a handoff error."""
    version = _agent_version(step)
    outputs = latest_outputs(run) if outputs is None else outputs
    fields = version.definition.get("input_fields", [])
    values, empty_handoffs = step_input(
        step, fields, run_input=run.input, outputs=outputs, context=run.context
    )
    step_run = rows.create(
        StepRun,
        run=run,
        step_key=step["key"],
        activation=activation,
        attempt=1,
        agent=version.agent,
        agent_version=version,
        input=values,
        **dispatch.marked_as_sent(),
    )
    step_run.run = run
    step_run.agent_version = version
    try:
        validate_values(parse_fields(fields, "input_fields"), values, what="input")
    except DataMissing as exc:
        failing = set(exc.missing) | set(exc.invalid)
        sources = [h["source"] for h in empty_handoffs] + [
            src
            for name, src in (step.get("input_mapping") or {}).items()
            if name in failing and isinstance(src, str) and src.startswith("steps.")
        ]
        if sources:
            failure = HandoffError(
                f"the output handed to step {step['key']!r} does not satisfy its input: "
                f"{exc.message}",
                from_step=", ".join(sorted({s.split(".")[1] for s in sources})) or "",
                to_step=step["key"],
                missing=exc.missing,
                invalid=exc.invalid,
            )
        else:
            failure = exc
        escalations.raise_for(step_run, failure, attempts=[])
        return step_run
    handed = {
        name: src
        for name, src in (step.get("input_mapping") or {}).items()
        if isinstance(src, str) and src.startswith("steps.")
    }
    if handed:
        append_step("handoff", step_run, {"mapping": handed})
    return step_run


def start_steps(run: Run) -> list[StepRun]:
    definition = definition_of(run)
    pattern = definition["pattern"]
    if pattern == "conversation":
        run.context = {"transcript": [], "turn": 0}
        run.save(update_fields=["context"])
    if pattern == "maker_checker":
        run.context = {"round": 0, "feedback": "", "draft": None}
        run.save(update_fields=["context"])
    if pattern == "supervisor":
        run.context = {"phase": "plan", "specialist_outputs": {}}
        run.save(update_fields=["context"])
    firsts = [s for s in definition["steps"] if not s["after"]]
    if pattern == "conversation":
        firsts = firsts[:1]
    return [create_step_run(run, step, outputs={}) for step in firsts]


def after_step(run: Run, step_run: StepRun) -> list[StepRun]:
    """The step finished (decided, or a person resolved it): create what comes next, or finish
    the run. Returns the new step runs to send."""
    pattern = definition_of(run)["pattern"]
    handler = {
        "sequential": _after_graph,
        "concurrent": _after_graph,
        "router": _after_router,
        "maker_checker": _after_maker_checker,
        "supervisor": _after_supervisor,
        "conversation": _after_conversation,
    }[pattern]
    return handler(run, step_run)


def _open_work(run: Run) -> bool:
    return StepRun.objects.filter(run=run, status__in=OPEN).exists()


def _terminal_output(run: Run, keys: list[str], outputs: dict) -> dict:
    if len(keys) == 1:
        return outputs.get(keys[0], {}).get("output", {})
    return {key: outputs.get(key, {}).get("output", {}) for key in keys}


def _after_graph(run: Run, step_run: StepRun) -> list[StepRun]:
    steps = definition_of(run)["steps"]
    outputs, existing, open_work = run_state(run)
    created = []
    for step in steps:
        if step_run.step_key not in step["after"] or step["key"] in existing:
            continue
        if all(dep in outputs for dep in step["after"]):  # the join is complete
            created.append(create_step_run(run, step, outputs=outputs))
    if not created and not open_work:
        depended = {dep for s in steps for dep in s["after"]}
        terminal = [s["key"] for s in steps if s["key"] not in depended]
        output = _terminal_output(run, terminal, outputs)
        runs.finish(run, Run.Outcome.COMPLETED, output=output, nothing_open=True)
    return created


def _router_vars(run: Run, router_result: dict) -> dict:
    return {"input": run.input, "router": router_result}


def _after_router(run: Run, step_run: StepRun) -> list[StepRun]:
    step = step_def(run, step_run.step_key)
    outputs = latest_outputs(run)
    if step["role"] != "router":
        runs.finish(run, Run.Outcome.COMPLETED, output=outputs[step_run.step_key]["output"])
        return []
    if (run.context or {}).get("route"):  # a person chose the route when resolving
        chosen = step_def(run, run.context["route"])
        return [create_step_run(run, chosen, outputs=outputs)]
    import cel

    variables = _router_vars(run, outputs[step_run.step_key])
    routes = [s for s in definition_of(run)["steps"] if s["role"] == "route"]
    for route in routes:
        try:
            matched = cel.compile(route["when"]).execute(variables)
        except Exception as exc:  # an unevaluable route does not match; say so in the log
            log.warning("run %s: route %r condition failed: %s", run.pk, route["key"], exc)
            continue
        if matched is True:
            _remember(run, route=route["key"])
            return [create_step_run(run, route, outputs=outputs)]
    default = [s for s in definition_of(run)["steps"] if s["role"] == "default"]
    if default:
        _remember(run, route=default[0]["key"])
        return [create_step_run(run, default[0], outputs=outputs)]
    escalations.raise_for(
        step_run,
        OutOfScope(
            f"no route matched the router's decision {step_run.decision!r}",
            details={
                "routes": {r["key"]: r["when"] for r in routes},
                "router": outputs[step_run.step_key],
            },
        ),
        attempts=[],
        options=[{"route": r["key"], "label": r["label"], "when": r["when"]} for r in routes],
        keep_status=True,
    )
    return []


def _remember(run: Run, **values) -> None:
    run.context = {**(run.context or {}), **values}
    run.save(update_fields=["context"])


def _after_maker_checker(run: Run, step_run: StepRun) -> list[StepRun]:
    definition = definition_of(run)
    config = definition["config"]
    step = step_def(run, step_run.step_key)
    outputs = latest_outputs(run)
    if step["role"] == "maker":
        _remember(run, draft=step_run.output)
        checker = next(s for s in definition["steps"] if s["role"] == "checker")
        return [create_step_run(run, checker, activation=step_run.activation, outputs=outputs)]
    maker = next(s for s in definition["steps"] if s["role"] == "maker")
    if step_run.decision == config["approve_decision"]:
        runs.finish(
            run,
            Run.Outcome.COMPLETED,
            output={
                **(outputs[maker["key"]]["output"] or {}),
                "checked_by": step_run.step_key,
                "rounds": step_run.activation + 1,
            },
        )
        return []
    next_round = step_run.activation + 1
    history = [
        *list((run.context or {}).get("history", [])),
        {
            "round": step_run.activation + 1,
            "draft": outputs[maker["key"]]["output"],
            "verdict": step_run.decision,
            "feedback": step_run.rationale,
        },
    ]
    _remember(run, feedback=step_run.rationale, round=next_round, history=history)
    if next_round >= config["max_rounds"]:
        escalations.raise_limit(
            step_run,
            "round_limit",
            f"the checker rejected {config['max_rounds']} round(s); a person decides",
            {"rounds": history, "max_rounds": config["max_rounds"]},
        )
        return []
    return [create_step_run(run, maker, activation=next_round, outputs=outputs)]


def _after_supervisor(run: Run, step_run: StepRun) -> list[StepRun]:
    definition = definition_of(run)
    step = step_def(run, step_run.step_key)
    outputs = latest_outputs(run)
    manager = next(s for s in definition["steps"] if s["role"] == "manager")
    specialists = {s["key"]: s for s in definition["steps"] if s["role"] == "specialist"}
    if step["role"] == "manager" and step_run.activation >= 1:
        runs.finish(run, Run.Outcome.COMPLETED, output=step_run.output)
        return []
    if step["role"] == "manager":
        selection = (step_run.output or {}).get(definition["config"]["selection_field"]) or []
        if isinstance(selection, str):
            selection = [s.strip() for s in selection.split(",") if s.strip()]
        unknown = [s for s in selection if s not in specialists]
        if not isinstance(selection, list) or unknown:
            escalations.raise_for(
                step_run,
                OutOfScope(
                    f"the manager chose specialists that do not exist: {unknown}",
                    details={"chosen": selection, "specialists": sorted(specialists)},
                ),
                attempts=[],
                keep_status=True,
                options=[{"specialist": k} for k in specialists],
            )
            return []
        if not selection:
            runs.finish(run, Run.Outcome.COMPLETED, output=step_run.output)
            return []
        _remember(run, selected=selection, phase="specialists")
        return [create_step_run(run, specialists[key], outputs=outputs) for key in selection]
    selected = (run.context or {}).get("selected", [])
    if all(key in outputs for key in selected):  # join of the chosen specialists
        _remember(
            run,
            phase="synthesis",
            specialist_outputs={key: outputs[key]["output"] for key in selected},
        )
        return [create_step_run(run, manager, activation=1, outputs=outputs)]
    return []


def _after_conversation(run: Run, step_run: StepRun) -> list[StepRun]:
    import cel

    definition = definition_of(run)
    config = definition["config"]
    participants = [s for s in definition["steps"] if s["role"] == "participant"]
    turn = step_run.activation
    last = {
        "speaker": step_run.step_key,
        "decision": step_run.decision,
        "confidence": step_run.confidence,
        "output": step_run.output or {},
        "rationale": step_run.rationale,
    }
    transcript = [*list((run.context or {}).get("transcript", [])), {"turn": turn + 1, **last}]
    _remember(run, transcript=transcript, turn=turn + 1)
    try:
        stop = cel.compile(config["stop_condition"]).execute(
            {"last": last, "turn": turn + 1, "input": run.input}
        )
    except Exception as exc:  # an unevaluable stop condition does not stop the talk
        log.warning("run %s: stop condition failed: %s", run.pk, exc)
        stop = False
    if stop is True:
        runs.finish(
            run, Run.Outcome.COMPLETED, output={**(step_run.output or {}), "turns": turn + 1}
        )
        return []
    if turn + 1 >= config["max_turns"]:
        escalations.raise_limit(
            step_run,
            "turn_limit",
            f"no agreement after {config['max_turns']} turns; a person decides",
            {"transcript": transcript, "max_turns": config["max_turns"]},
        )
        return []
    following = participants[(turn + 1) % len(participants)]
    return [create_step_run(run, following, activation=turn + 1, outputs=latest_outputs(run))]
