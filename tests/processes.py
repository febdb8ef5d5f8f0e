"""Which processes are running, read from /proc (Linux), for tests that start subprocesses.

A process is identified by (pid, start time) so that a recycled pid is not taken for a survivor.
Zombies count as gone: they run nothing and only wait for their parent to reap them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    started: int  # clock ticks after boot: with pid, identifies the process
    command: str


def read_proc(pid: int) -> Proc | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:  # gone while we looked
        return None
    # The command sits in parentheses and may itself contain spaces and parentheses.
    head, _, tail = stat.rpartition(")")
    fields = tail.split()
    if fields[0] in {"Z", "X"}:
        return None
    try:
        cmdline = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").strip()
    except OSError:
        cmdline = b""
    command = cmdline.decode(errors="replace") or head.partition("(")[2]
    return Proc(pid, int(fields[1]), int(fields[2]), int(fields[19]), command)


def process_table() -> list[Proc]:
    procs = (read_proc(int(entry.name)) for entry in PROC.iterdir() if entry.name.isdigit())
    return [proc for proc in procs if proc is not None]


def process_group_members(pgid: int) -> list[int]:
    """Pids of the live processes in a process group."""
    return [proc.pid for proc in process_table() if proc.pgid == pgid]


def process_tree(root: int) -> list[Proc]:
    """`root`, its descendants, and every member of the process groups they lead.

    Groups led by a process outside the tree (say, the test runner's) are left out.
    """
    table = process_table()
    children: dict[int, list[Proc]] = {}
    for proc in table:
        children.setdefault(proc.ppid, []).append(proc)
    found = {proc.pid: proc for proc in table if proc.pid == root}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child.pid not in found:
                found[child.pid] = child
                todo.append(child.pid)
    groups = {proc.pgid for proc in found.values() if proc.pgid in found}
    found.update({proc.pid: proc for proc in table if proc.pgid in groups})
    return sorted(found.values(), key=lambda proc: proc.pid)


def still_running(procs: list[Proc]) -> list[Proc]:
    """Those of `procs` that are still running (same pid and start time, not a zombie)."""
    survivors = []
    for proc in procs:
        now = read_proc(proc.pid)
        if now is not None and now.started == proc.started:
            survivors.append(now)
    return survivors
