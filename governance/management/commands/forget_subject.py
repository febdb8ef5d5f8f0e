"""`python manage.py forget_subject ID --reason TEXT`: erase a data subject's personal data."""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from governance.personal import ErasureError, forget_subject


class Command(BaseCommand):
    help = (
        "Destroy a data subject's key: their personal data becomes unreadable in every record, "
        "page, export and bundle, while the ledger still verifies. Recorded as subject.erased."
    )

    def add_arguments(self, parser):
        parser.add_argument("subject_id", help="the data subject's id as recorded")
        parser.add_argument(
            "--reason", required=True, help="why: e.g. the erasure request's reference"
        )
        parser.add_argument("--as", dest="username", help="the person carrying out the erasure")

    def handle(self, *args, subject_id: str, reason: str, username: str | None, **options):
        actor = None
        if username:
            actor = get_user_model().objects.filter(username=username, is_active=True).first()
            if actor is None:
                raise CommandError(f"--as: no active user called {username!r}")
        try:
            record = forget_subject(subject_id, actor=actor, reason=reason)
        except ErasureError as exc:
            raise CommandError(str(exc)) from None
        affected = json.loads(record.canonical)["body"]["records_affected"]
        self.stdout.write(
            f"Erased subject {subject_id!r}: its key is destroyed; {affected} record(s) keep "
            f"their ciphertext, now unreadable. Recorded as ledger record #{record.seq}."
        )
