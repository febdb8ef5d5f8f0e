"""`verify_ledger`: recompute the decision ledger and check its checkpoints.

Exit 0 when intact, 1 when broken (the first bad seq and why), 2 on a usage error. The outcome
is itself recorded in the ledger (`ledger.verified`); an intact chain's head is also signed
(a checkpoint with reason "verification").
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from governance.verify import record_verification, verify_chain


class Command(BaseCommand):
    help = (
        "Recompute every hash of the decision ledger from the stored bytes and check every "
        "checkpoint. Exit 0 intact, 1 broken."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since",
            type=int,
            metavar="SEQ",
            help="start at this seq, trusting the stored hash of the record before it",
        )
        parser.add_argument(
            "--workers",
            type=int,
            metavar="N",
            help="verify a long chain in up to N ranges at once, in as many processes "
            "(default: STEWARD_VERIFY_WORKERS, else the number of CPUs; 1: one process)",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **options):
        try:
            report = verify_chain(since=options["since"], workers=options["workers"])
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from None
        record_verification(report)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write(self.summary(report))
        if not report.ok:
            raise CommandError(
                f"the decision ledger is broken at seq {report.first_bad_seq}", returncode=1
            )

    def summary(self, report) -> str:
        first = report.since or 1
        checked = (
            f"{report.records_checked:,} records (seq {first} to {report.head_seq}), "
            f"{report.checkpoints_checked:,} checkpoints, "
            f"{report.checkpoint_files_checked:,} checkpoint files in {report.duration_s:.2f} s"
        )
        if report.ok:
            return self.style.SUCCESS(
                f"Intact: {checked}.\nHead: seq {report.head_seq}, hash {report.head_hash}"
            )
        return self.style.ERROR(
            f"BROKEN at seq {report.first_bad_seq}: {report.reason}\nChecked {checked}."
        )
