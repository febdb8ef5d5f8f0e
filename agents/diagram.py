"""A workflow definition drawn as SVG, on the server: `render(definition) -> str`.

Pure: no database, no JavaScript, no external library. Steps are laid out top to bottom in
layers from their `after` graph (a step sits one layer below the latest step it waits for);
triggers are entry pills above the first layer. Pattern extras: a router's routes carry their
`when` condition on the edge; the maker-checker and conversation loops are a back edge with
their round or turn limit; a supervisor's specialists report back to the manager.

Everything shown comes from people (labels, names, conditions), so every text is escaped and
only SVG presentation attributes are used (the CSP forbids `style`). The function never
raises on a malformed definition: what it cannot read, it leaves out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape as _xml_escape

NODE_W = 212
NODE_H = 70
H_GAP = 36
V_GAP = 70
MARGIN = 24
PILL_H = 32
LOOP_LANE = 36  # room right of the nodes for a back edge
LOOP_LABEL_W = 220

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
MONO = "ui-monospace, 'SFMono-Regular', 'DejaVu Sans Mono', Menlo, Consolas, monospace"
INK = "#17212b"
INK_SOFT = "#4a5866"
INK_FAINT = "#7b8794"
LINE = "#8896a5"
LOOP = "#9a6700"
PAPER = "#ffffff"

# role: (accent, badge fill, badge text, badge label)
ROLE_STYLE = {
    "step": ("#1f6feb", "#e7f0fe", "#1b426b", "step"),
    "router": ("#6f42c1", "#f0e9fb", "#4b2a86", "router"),
    "route": ("#1f6feb", "#e7f0fe", "#1b426b", "route"),
    "default": ("#7b8794", "#eef1f4", "#4a5866", "default"),
    "maker": ("#0f7b6c", "#e3f4f1", "#0b5a4f", "maker"),
    "checker": ("#9a6700", "#fff4d6", "#7a5200", "checker"),
    "manager": ("#12304f", "#e3e9f1", "#12304f", "manager"),
    "specialist": ("#1f6feb", "#e7f0fe", "#1b426b", "specialist"),
    "participant": ("#0f7b6c", "#e3f4f1", "#0b5a4f", "participant"),
}
UNKNOWN_ROLE = ("#7b8794", "#eef1f4", "#4a5866", "")
PATTERN_LABELS = {
    "sequential": "Sequential",
    "concurrent": "Concurrent (fan-out and join)",
    "router": "Router",
    "maker_checker": "Maker-checker",
    "supervisor": "Supervisor",
    "conversation": "Conversation",
}


def escape(value) -> str:
    """Text for SVG content and attribute values: markup becomes text."""
    return _xml_escape(str(value), {'"': "&quot;", "'": "&#x27;"})


def clip(text: str, width: float, char_width: float) -> str:
    """`text` cut to fit `width` pixels at roughly `char_width` per character."""
    text = " ".join(str(text).split())
    limit = max(int(width / char_width), 4)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass
class Node:
    key: str
    label: str
    agent: str
    role: str
    after: list[str]
    when: str = ""
    layer: int = 0
    x: float = 0.0
    y: float = 0.0
    w: float = NODE_W
    h: float = NODE_H
    pill: bool = False
    tone: str = "step"
    incoming: list[Node] = field(default_factory=list)
    outgoing: list[Node] = field(default_factory=list)

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


def render(
    definition,
    *,
    agent_names: Mapping[int, str] | None = None,
    workflow_names: Mapping[int, str] | None = None,
    title: str = "Workflow diagram",
    id_prefix: str = "wf",
) -> str:
    """The SVG text (a complete `<svg>` element) of `definition`."""
    prefix = re.sub(r"[^a-zA-Z0-9_-]", "", id_prefix) or "wf"
    definition = definition if isinstance(definition, dict) else {}
    pattern = definition.get("pattern") if isinstance(definition.get("pattern"), str) else ""
    config = definition.get("config") if isinstance(definition.get("config"), dict) else {}
    nodes = _nodes(definition.get("steps"), agent_names or {})
    entries = _entries(definition.get("triggers"), workflow_names or {})
    if not nodes:
        return _empty(title, prefix)
    return _Drawing(nodes, entries, pattern, config, title, prefix).svg()


def _nodes(steps, agent_names: Mapping[int, str]) -> list[Node]:
    nodes: list[Node] = []
    seen: set[str] = set()
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        key = step.get("key")
        key = key if isinstance(key, str) and key and key not in seen else f"step {index + 1}"
        seen.add(key)
        label = step.get("label") if isinstance(step.get("label"), str) else ""
        agent_id = step.get("agent_id")
        agent = agent_names.get(agent_id) if isinstance(agent_id, int) else None
        if agent is None:
            agent = f"agent #{agent_id}" if isinstance(agent_id, int) else "no agent chosen"
        version = step.get("agent_version")
        if isinstance(version, int) and not isinstance(version, bool):
            agent = f"{agent} · v{version}"
        elif isinstance(agent_id, int):
            agent = f"{agent} · not published"
        after = step.get("after") if isinstance(step.get("after"), list) else []
        role = step.get("role") if isinstance(step.get("role"), str) else ""
        when = step.get("when") if isinstance(step.get("when"), str) else ""
        nodes.append(
            Node(
                key=key,
                label=label.strip() or key,
                agent=agent,
                role=role or "step",
                after=[a for a in after if isinstance(a, str)],
                when=when,
                tone=role or "step",
            )
        )
    return nodes


def _entries(triggers, workflow_names: Mapping[int, str]) -> list[Node]:
    entries = [Node("start", "Start · form or API", "", "", [], pill=True, tone="start")]
    for trigger in triggers if isinstance(triggers, list) else []:
        if not isinstance(trigger, dict):
            continue
        kind = trigger.get("type")
        if kind == "webhook":
            text = "Webhook call"
        elif kind == "schedule":
            every = trigger.get("every_minutes")
            text = f"Every {_minutes(every)}" if isinstance(every, int) else "On a schedule"
        elif kind == "workflow":
            other = trigger.get("workflow_id")
            name = workflow_names.get(other) if isinstance(other, int) else None
            name = name or (f"workflow #{other}" if isinstance(other, int) else "a workflow")
            outcome = trigger.get("outcome") if isinstance(trigger.get("outcome"), str) else ""
            verb = {
                "completed": "completes",
                "rejected": "ends rejected",
                "cancelled": "is cancelled",
            }.get(outcome, "finishes")
            text = f"When \u2018{name}\u2019 {verb}"
        else:
            continue
        entries.append(Node(f"trigger {len(entries)}", text, "", "", [], pill=True, tone="trigger"))
    for entry in entries:
        entry.h = PILL_H
        entry.w = min(max(len(entry.label) * 7.4 + 34, 120), NODE_W + 110)
    return entries


def _minutes(every: int) -> str:
    if every % 1440 == 0:
        days = every // 1440
        return "day" if days == 1 else f"{days} days"
    if every % 60 == 0:
        hours = every // 60
        return "hour" if hours == 1 else f"{hours} hours"
    return "minute" if every == 1 else f"{every} minutes"


class _Drawing:
    def __init__(self, nodes, entries, pattern, config, title, prefix):
        self.nodes = nodes
        self.entries = entries
        self.pattern = pattern
        self.config = config
        self.title = title
        self.prefix = prefix
        self.by_key = {n.key: n for n in nodes}
        self.parts: list[str] = []
        self.labels: list[str] = []  # drawn last, above the edges
        for node in nodes:
            node.incoming = [
                self.by_key[a] for a in node.after if a in self.by_key and a != node.key
            ]
            for parent in node.incoming:
                parent.outgoing.append(node)
        self.loop = pattern in ("maker_checker", "conversation") and len(nodes) >= 2
        self.supervisor = pattern == "supervisor" and any(n.role == "manager" for n in nodes)
        self.end = None
        if pattern == "maker_checker":
            checker = next((n for n in nodes if n.role == "checker"), None)
            if checker is not None:
                self.end = Node("end", "Approved · done", "", "", [checker.key], pill=True)
                self.end.h, self.end.w, self.end.tone = PILL_H, 150, "end"
                self.end.incoming = [checker]

    # --- layout -------------------------------------------------------------------------------

    def _layers(self) -> list[list[Node]]:
        depth: dict[str, int] = {}

        def layer_of(node: Node, trail: frozenset) -> int:
            if node.key in depth:
                return depth[node.key]
            parents = [p for p in node.incoming if p.key not in trail]
            value = 1 + max((layer_of(p, trail | {node.key}) for p in parents), default=-1)
            depth[node.key] = value
            return value

        for node in self.nodes:
            node.layer = layer_of(node, frozenset())
        count = max(depth.values()) + 1
        layers: list[list[Node]] = [[] for _ in range(count)]
        for node in self.nodes:
            layers[node.layer].append(node)
        for row in layers:
            self._place_row(row)
        # Fewer crossings: order each layer by where its parents sit (two downward sweeps).
        for _ in range(2):
            for row in layers[1:]:
                position = {}
                for index, node in enumerate(row):
                    places = [p.cx for p in node.incoming]
                    position[node.key] = (sum(places) / len(places) if places else 0.0, index)
                row.sort(key=lambda n: position[n.key])
                self._place_row(row)
        return layers

    @staticmethod
    def _place_row(row: list[Node]) -> None:
        """Side by side, centred on x = 0 (the final layout shifts every row)."""
        x = -(sum(n.w for n in row) + H_GAP * (len(row) - 1)) / 2
        for node in row:
            node.x = x
            x += node.w + H_GAP

    def layout(self) -> tuple[float, float]:
        layers = self._layers()
        rows: list[list[Node]] = [self.entries, *layers]
        if self.end is not None:
            rows.append([self.end])
        widths = [sum(n.w for n in row) + H_GAP * (len(row) - 1) for row in rows]
        inner = max(widths)
        right_room = LOOP_LANE + LOOP_LABEL_W if (self.loop or self.supervisor) else 0
        y = MARGIN + (22 if self.pattern else 0)
        self.row_tops = []
        for row, width in zip(rows, widths, strict=True):
            height = max(n.h for n in row)
            x = MARGIN + (inner - width) / 2
            for node in row:
                node.x, node.y = x, y + (height - node.h) / 2
                x += node.w + H_GAP
            self.row_tops.append(y)
            gap = V_GAP
            if row is self.entries and self._junction_needed():
                gap = V_GAP + 10
            y += height + gap
        if self.supervisor:
            y += 26  # the bus the specialists report on
        return MARGIN * 2 + inner + right_room, y - V_GAP + MARGIN

    def _roots(self) -> list[Node]:
        return [n for n in self.nodes if not n.incoming] or self.nodes[:1]

    def _junction_needed(self) -> bool:
        return len(self.entries) > 1 and len(self._roots()) > 1

    # --- drawing ------------------------------------------------------------------------------

    def svg(self) -> str:
        width, height = self.layout()
        self._entry_edges()
        for node in self.nodes:
            self._edges_into(node)
        if self.end is not None:
            self._edges_into(self.end, label=f"decision = {self._approve()}")
        if self.loop:
            self._loop_edge()
        if self.supervisor:
            self._supervisor_return()
        for node in self.entries:
            self._pill(node)
        if self.end is not None:
            self._pill(self.end)
        for node in self.nodes:
            self._node(node)
        head = self._header()
        width, height = round(width), round(height)
        p = self.prefix
        return "".join(
            [
                f'<svg xmlns="http://www.w3.org/2000/svg" class="wf-diagram" '
                f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
                f'role="img" aria-labelledby="{p}-title {p}-desc" '
                f'font-family="{escape(FONT)}" font-size="12">',
                f'<title id="{p}-title">{escape(self.title)}</title>',
                f'<desc id="{p}-desc">{escape(self._description())}</desc>',
                self._defs(),
                head,
                *self.parts,
                *self.labels,
                "</svg>",
            ]
        )

    def _defs(self) -> str:
        p = self.prefix
        arrow = (
            '<marker id="{id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" '
            'fill="{fill}"/></marker>'
        )
        return (
            "<defs>"
            + arrow.format(id=f"{p}-arrow", fill=LINE)
            + arrow.format(id=f"{p}-arrow-loop", fill=LOOP)
            + "</defs>"
        )

    def _header(self) -> str:
        if not self.pattern:
            return ""
        label = PATTERN_LABELS.get(self.pattern, self.pattern)
        return (
            f'<text x="{MARGIN}" y="{MARGIN + 8}" fill="{INK_FAINT}" font-size="11" '
            f'font-weight="600" letter-spacing="0.6">{escape(label.upper())}</text>'
        )

    def _description(self) -> str:
        steps = "; ".join(
            f"{n.label} ({n.role}, {n.agent})"
            + (f" after {', '.join(a.label for a in n.incoming)}" if n.incoming else "")
            + (f" when {n.when}" if n.when else "")
            for n in self.nodes
        )
        starts = ", ".join(e.label for e in self.entries)
        return f"{PATTERN_LABELS.get(self.pattern, 'Workflow')}. Started by: {starts}. {steps}."

    def _approve(self) -> str:
        value = self.config.get("approve_decision")
        return value if isinstance(value, str) and value else "approve"

    def _path(self, d: str, *, loop: bool = False, dashed: bool = False) -> None:
        colour, marker = (LOOP, "arrow-loop") if loop else (LINE, "arrow")
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        self.parts.append(
            f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.5"{dash} '
            f'marker-end="url(#{self.prefix}-{marker})"/>'
        )

    @staticmethod
    def _curve(x1, y1, x2, y2) -> str:
        bend = max((y2 - y1) * 0.5, 18)
        return (
            f"M{x1:.1f} {y1:.1f} C{x1:.1f} {y1 + bend:.1f} {x2:.1f} {y2 - bend:.1f} "
            f"{x2:.1f} {y2:.1f}"
        )

    @staticmethod
    def _spread(node: Node, count: int, index: int) -> float:
        """Where the `index`-th of `count` edges meets `node`'s top or bottom side."""
        if count <= 1:
            return node.cx
        span = min(node.w * 0.6, 22.0 * (count - 1))
        return node.cx - span / 2 + span * index / (count - 1)

    def _entry_edges(self) -> None:
        roots = self._roots()
        if self._junction_needed():
            jx = sum(e.cx for e in self.entries) / len(self.entries)
            jy = self.entries[0].y + PILL_H + (V_GAP + 10) / 2 - 4
            for entry in self.entries:
                self.parts.append(
                    f'<path d="{self._curve(entry.cx, entry.y + entry.h, jx, jy)}" fill="none" '
                    f'stroke="{LINE}" stroke-width="1.5"/>'
                )
            for root in sorted(roots, key=lambda n: n.x):
                self._path(self._curve(jx, jy, root.cx, root.y))
            self.parts.append(
                f'<circle cx="{jx:.1f}" cy="{jy:.1f}" r="4.5" fill="{PAPER}" stroke="{LINE}" '
                'stroke-width="1.5"/>'
            )
            return
        for entry in self.entries:
            for root in roots:
                x2 = self._spread(root, len(self.entries), self.entries.index(entry))
                self._path(self._curve(entry.cx, entry.y + entry.h, x2, root.y))

    def _edges_into(self, node: Node, label: str = "") -> None:
        parents = sorted(node.incoming, key=lambda n: n.cx)
        for index, parent in enumerate(parents):
            children = sorted(parent.outgoing, key=lambda n: n.cx)
            start = (
                self._spread(parent, len(children), children.index(node))
                if node in children
                else parent.cx
            )
            end = self._spread(node, len(parents), index)
            self._path(self._curve(start, parent.y + parent.h, end, node.y))
        text = label
        if not text and self.pattern == "router" and node.role in ("route", "default"):
            text = "otherwise" if node.role == "default" else node.when
        if text:
            self._edge_label(node.cx, node.y - 16, text, node.w + H_GAP - 8)

    def _edge_label(self, cx: float, cy: float, text: str, max_width: float) -> None:
        shown = clip(text, max_width - 14, 6.8)
        width = len(shown) * 6.8 + 14
        self.labels.append(
            f"<g><title>{escape(text)}</title>"
            f'<rect x="{cx - width / 2:.1f}" y="{cy - 10:.1f}" width="{width:.1f}" height="20" '
            f'rx="10" fill="{PAPER}" stroke="#dde3ea"/>'
            f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle" fill="{INK_SOFT}" '
            f'font-size="11" font-family="{escape(MONO)}">{escape(shown)}</text></g>'
        )

    def _side_label(self, x: float, y: float, lines: list[tuple[str, str]]) -> None:
        """Lines of (text, colour) left-aligned at x, the first centred near y."""
        top = y - (len(lines) - 1) * 8
        out = []
        for index, (text, colour) in enumerate(lines):
            shown = clip(text, LOOP_LABEL_W - 12, 6.6)
            weight = ' font-weight="600"' if index == 0 else ""
            out.append(
                f'<text x="{x:.1f}" y="{top + index * 16:.1f}" fill="{colour}" '
                f'font-size="11"{weight}><title>{escape(text)}</title>{escape(shown)}</text>'
            )
        self.labels.append("".join(out))

    def _loop_edge(self) -> None:
        if self.pattern == "maker_checker":
            first = next((n for n in self.nodes if n.role == "maker"), self.nodes[0])
            last = next((n for n in self.nodes if n.role == "checker"), self.nodes[-1])
            rounds = self.config.get("max_rounds", 3)
            lines = [
                ("revise with feedback", LOOP),
                (f"when not \u2018{self._approve()}\u2019", INK_SOFT),
                (f"max {rounds} rounds, then escalation", INK_FAINT),
            ]
        else:
            first, last = self.nodes[0], self.nodes[-1]
            stop = self.config.get("stop_condition") or "the stop condition"
            turns = self.config.get("max_turns", 6)
            lines = [
                ("next turn", LOOP),
                (f"until {stop}", INK_SOFT),
                (f"max {turns} turns, then escalation", INK_FAINT),
            ]
        right = max(n.x + n.w for n in self.nodes) + LOOP_LANE
        y1, y2 = last.y + last.h / 2, first.y + first.h / 2
        x1, x2 = last.x + last.w, first.x + first.w
        r = 10
        d = (
            f"M{x1:.1f} {y1:.1f} H{right - r:.1f} Q{right:.1f} {y1:.1f} {right:.1f} {y1 - r:.1f} "
            f"V{y2 + r:.1f} Q{right:.1f} {y2:.1f} {right - r:.1f} {y2:.1f} H{x2 + 2:.1f}"
        )
        self._path(d, loop=True, dashed=True)
        self._side_label(right + 10, (y1 + y2) / 2, lines)

    def _supervisor_return(self) -> None:
        manager = next(n for n in self.nodes if n.role == "manager")
        specialists = [n for n in self.nodes if n is not manager]
        if not specialists:
            return
        bottom = max(n.y + n.h for n in specialists)
        bus = bottom + 26
        right = max(n.x + n.w for n in self.nodes) + LOOP_LANE
        for node in specialists:
            self.parts.append(
                f'<path d="M{node.cx:.1f} {node.y + node.h:.1f} V{bus:.1f}" fill="none" '
                f'stroke="{LOOP}" stroke-width="1.5" stroke-dasharray="5 4"/>'
            )
        left = min(n.cx for n in specialists)
        y2 = manager.y + manager.h / 2
        r = 10
        d = (
            f"M{left:.1f} {bus:.1f} H{right - r:.1f} Q{right:.1f} {bus:.1f} {right:.1f} "
            f"{bus - r:.1f} V{y2 + r:.1f} Q{right:.1f} {y2:.1f} {right - r:.1f} {y2:.1f} "
            f"H{manager.x + manager.w + 2:.1f}"
        )
        self._path(d, loop=True, dashed=True)
        selection = self.config.get("selection_field") or "specialists"
        self._side_label(
            right + 10,
            (bus + y2) / 2,
            [
                ("results back to the manager", LOOP),
                ("context.specialist_outputs", INK_SOFT),
                (f"picked by \u2018{selection}\u2019", INK_FAINT),
            ],
        )

    def _pill(self, node: Node) -> None:
        fill, stroke, colour = {
            "start": ("#12304f", "#12304f", "#ffffff"),
            "end": ("#e5f5ec", "#a6dcbf", "#1a7f4b"),
        }.get(node.tone, ("#f4f6f9", "#c5ced8", INK_SOFT))
        text = clip(node.label, node.w - 24, 7.4)
        self.parts.append(
            f"<g><title>{escape(node.label)}</title>"
            f'<rect x="{node.x:.1f}" y="{node.y:.1f}" width="{node.w:.1f}" height="{node.h}" '
            f'rx="{node.h / 2}" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{node.cx:.1f}" y="{node.y + node.h / 2 + 4:.1f}" text-anchor="middle" '
            f'fill="{colour}" font-weight="600">{escape(text)}</text></g>'
        )

    def _node(self, node: Node) -> None:
        accent, badge_fill, badge_ink, badge = ROLE_STYLE.get(node.role, UNKNOWN_ROLE)
        badge = badge or node.role
        badge_text = clip(badge.upper(), 90, 7.2)
        badge_w = len(badge_text) * 7.0 + 12
        x, y = node.x, node.y
        label = clip(node.label, NODE_W - 28, 8.4)
        agent_colour = "#9a6700" if node.agent.endswith("not published") else INK_SOFT
        agent = clip(node.agent, NODE_W - 28, 7.0)
        tooltip = f"{node.label} — {node.agent} ({node.role}, key {node.key})"
        clip_id = f"{self.prefix}-clip-{self.nodes.index(node)}"
        self.parts.append(
            f"<g><title>{escape(tooltip)}</title>"
            f'<clipPath id="{clip_id}"><rect x="{x:.1f}" y="{y:.1f}" width="{node.w}" '
            f'height="{node.h}" rx="8"/></clipPath>'
            f'<rect x="{x:.1f}" y="{y + 2:.1f}" width="{node.w}" height="{node.h}" rx="8" '
            'fill="#101828" fill-opacity="0.07"/>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{node.w}" height="{node.h}" rx="8" '
            f'fill="{PAPER}" stroke="#c5ced8"/>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="5" height="{node.h}" fill="{accent}" '
            f'clip-path="url(#{clip_id})"/>'
            f'<text x="{x + 16:.1f}" y="{y + 24:.1f}" fill="{INK}" font-size="13" '
            f'font-weight="650">{escape(label)}</text>'
            f'<rect x="{x + node.w - badge_w - 8:.1f}" y="{y + 48:.1f}" width="{badge_w:.1f}" '
            f'height="16" rx="8" fill="{badge_fill}"/>'
            f'<text x="{x + node.w - badge_w / 2 - 8:.1f}" y="{y + 59.5:.1f}" text-anchor="middle" '
            f'fill="{badge_ink}" font-size="9.5" font-weight="700" letter-spacing="0.5">'
            f"{escape(badge_text)}</text>"
            f'<text x="{x + 16:.1f}" y="{y + 43:.1f}" fill="{agent_colour}">{escape(agent)}</text>'
            f'<text x="{x + 16:.1f}" y="{y + 60:.1f}" fill="{INK_FAINT}" font-size="10.5" '
            f'font-family="{escape(MONO)}">'
            f"{escape(clip(node.key, NODE_W - 36 - badge_w, 6.4))}</text>"
            "</g>"
        )


def _empty(title: str, prefix: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wf-diagram" viewBox="0 0 360 90" '
        f'width="360" height="90" role="img" aria-labelledby="{prefix}-title" '
        f'font-family="{escape(FONT)}" font-size="13">'
        f'<title id="{prefix}-title">{escape(title)}</title>'
        '<rect x="1" y="1" width="358" height="88" rx="8" fill="#fafbfc" stroke="#c5ced8" '
        'stroke-dasharray="5 4"/>'
        f'<text x="180" y="50" text-anchor="middle" fill="{INK_SOFT}">No steps yet</text></svg>'
    )
