import pytest

from console.celeryconfig import periodic_tasks
from governance import ledger
from governance.models import Checkpoint
from governance.tasks import checkpoint_ledger

pytestmark = pytest.mark.django_db


def test_beat_signs_the_ledger_head_every_five_minutes():
    entry = periodic_tasks()["ledger-checkpoint"]
    assert entry == {"task": "governance.tasks.checkpoint_ledger", "schedule": 300.0}
    assert checkpoint_ledger.name == entry["task"]


def test_the_task_signs_the_head_only_when_the_ledger_grew():
    assert checkpoint_ledger.apply().get() is None  # empty ledger: nothing to sign
    ledger.append("test.one", actor=None, body={})
    assert checkpoint_ledger.apply().get() == 1
    assert checkpoint_ledger.apply().get() is None  # already covered
    ledger.append("test.two", actor=None, body={})
    assert checkpoint_ledger.apply().get() == 2
    assert list(Checkpoint.objects.values_list("seq", "reason")) == [
        (2, "schedule"),
        (1, "schedule"),
    ]
