"""The list pages' template filters print what the generic filters they replace print."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.utils import timezone

GENERIC = Template("""<time datetime="{{ t|date:'c' }}">{{ t|date:"Y-m-d H:i" }}</time>""")
TIMESTAMP = Template("{% load listing %}{{ t|timestamp }}")


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/St_Johns"])
@pytest.mark.parametrize(
    "moment",
    [datetime(2026, 3, 29, 0, 59, 7, 123456, tzinfo=UTC), datetime(2026, 11, 2, 23, 5, tzinfo=UTC)],
)
def test_timestamp_prints_what_the_date_filters_print(zone, moment):
    with timezone.override(zone):
        context = Context({"t": moment})
        assert TIMESTAMP.render(context) == GENERIC.render(context)


def test_timestamp_of_nothing_is_empty():
    assert TIMESTAMP.render(Context({"t": None})) == ""
