"""Exports of the decision log: CSV, JSON Lines and evidence bundles (DESIGN.md, The decision
ledger; issue 3, Exports).

- `selection`: what an export holds (the exporter's visible records under a DecisionFilter,
  frozen at the chain head when it began).
- `tabular`: CSV (PostgreSQL COPY where it serves) and JSON Lines, as streams of byte chunks.
- `bundle`: the evidence bundle (zip), also streamed.
- `service`: runs an export to a file or a response and records it (`export.made` plus a
  checkpoint).
- `jobs`: large exports made by a Celery task, with progress.

Every format is a generator of byte chunks, so memory stays flat whatever the size, and the
same code serves the page, the command and the task.
"""
