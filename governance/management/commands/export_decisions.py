"""`python manage.py export_decisions --format csv|jsonl|bundle --out PATH [filters]`.

The filters mirror the decision log's (DecisionFilter). Without --as it is a system export:
it sees the whole log, and a bundle carries decrypted personal data only with
--include-personal. With --as USERNAME it exports what that person may see, as them. Like every
export it is recorded in the ledger (`export.made`) and followed by a checkpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from governance.decisions import DecisionFilterForm
from governance.exports.selection import FORMATS, ExportError, select
from governance.exports.service import Export, export_to_path, export_to_stream

# option -> DecisionFilterForm field
FILTER_OPTIONS = {
    "since": "--since",
    "until": "--until",
    "event": "--event",
    "team": "--team",
    "workflow": "--workflow",
    "agent": "--agent",
    "run": "--run",
    "actor": "--actor",
    "decision": "--decision",
    "confidence_min": "--confidence-min",
    "confidence_max": "--confidence-max",
}


class Command(BaseCommand):
    help = (
        "Export decision records as CSV, JSON Lines or a signed evidence bundle (zip). "
        "Recorded in the ledger as export.made."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
        parser.add_argument(
            "--out", required=True, help="file to write; '-' for standard output (csv, jsonl)"
        )
        parser.add_argument(
            "--force", action="store_true", help="replace --out if the file already exists"
        )
        parser.add_argument(
            "--as",
            dest="username",
            help="export as this user, with what they may see (default: a system export)",
        )
        parser.add_argument(
            "--include-personal",
            action="store_true",
            help="system bundles only: include decrypted personal parts of subjects not erased",
        )
        filters = parser.add_argument_group("filters (as on the decision log)")
        filters.add_argument("--since", help="recorded at or after (ISO 8601; UTC if no zone)")
        filters.add_argument("--until", help="recorded before (ISO 8601; UTC if no zone)")
        filters.add_argument("--event", help="event name, e.g. agent.decided")
        filters.add_argument("--team", help="team id")
        filters.add_argument("--workflow", help="workflow id")
        filters.add_argument("--agent", help="agent id")
        filters.add_argument("--run", help="run id")
        filters.add_argument("--actor", help="actor id or username")
        filters.add_argument("--decision", help="decision, exactly")
        filters.add_argument("--confidence-min", help="lowest confidence, 0 to 1")
        filters.add_argument("--confidence-max", help="highest confidence, 0 to 1")

    def handle(self, *args, fmt, out, force, username, include_personal, **options):
        decision_filter = self._filter(options)
        exporter = None
        if username:
            exporter = get_user_model().objects.filter(username=username, is_active=True).first()
            if exporter is None:
                raise CommandError(f"--as: no active user called {username!r}")
        if include_personal and fmt != "bundle":
            raise CommandError(
                "--include-personal: only bundles carry decrypted personal data; CSV and JSON "
                "Lines always hold the ciphertext"
            )
        if include_personal and exporter is not None:
            raise CommandError(
                "--include-personal: applies to system exports only; with --as, the user's role "
                "decides (compliance officers and admins see personal data)"
            )
        to_stdout = out == "-"
        if to_stdout and fmt == "bundle":
            raise CommandError("--out: a bundle is a zip file; give a path, not '-'")
        path = None if to_stdout else Path(out)
        if path is not None:
            if path.is_dir():
                raise CommandError(f"--out: {path} is a directory; give a file name")
            if not path.parent.is_dir():
                raise CommandError(f"--out: the directory {path.parent} does not exist")
            if path.exists() and not force:
                raise CommandError(f"--out: {path} already exists (use --force to replace it)")
        try:
            selection = select(
                decision_filter, exporter=exporter, include_personal=include_personal
            )
            export = Export(selection, fmt, via="command")
            if path is None:
                result = export_to_stream(export, sys.stdout.buffer)
            else:
                result = export_to_path(export, path)
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"--out: cannot write {out}: {exc.strerror or exc}") from None
        span = result.range
        where = f"seq {span['first_seq']}..{span['last_seq']}" if span else "none matched"
        checkpoint = f"; checkpoint at #{result.checkpoint.seq}" if result.checkpoint else ""
        message = (
            f"Exported {result.records} record(s) ({where}) as {fmt} to {out}: "
            f"{result.bytes} bytes, sha256 {result.sha256}. Recorded as ledger record "
            f"#{result.record.seq}{checkpoint}."
        )
        # With --out - the export itself is on standard output: the summary goes to stderr.
        (self.stderr if to_stdout else self.stdout).write(message)

    def _filter(self, options):
        data = {field: options[field] for field in FILTER_OPTIONS if options.get(field) is not None}
        form = DecisionFilterForm(data=data)
        if not form.is_valid():
            problems = []
            for field, errors in form.errors.items():
                option = FILTER_OPTIONS.get(field, "filters")
                got = f" (got {data[field]!r})" if field in data else ""
                problems.append(f"{option}: {' '.join(errors)}{got}")
            raise CommandError("; ".join(problems))
        return form.to_filter()
