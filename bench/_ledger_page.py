"""One log page at a million records: keyset pages against the same page fetched with OFFSET.

Figures (DESIGN.md's BENCH lines), for the newest unfiltered page, the newest page filtered by
event and team, and the same filtered page near the end of the log:

- `*_db`: the page query alone, PostgreSQL's own execution time (EXPLAIN ANALYZE, median);
  baseline: the same page fetched with OFFSET (near the end: OFFSET 999,000 unfiltered).
- `*_view`: the whole request through Django's test Client as a compliance officer (middleware,
  session, filters, the page and its other small queries, template), median; baseline: the same
  view with the page fetched by OFFSET. `*_htmx_view`: the same for the table partial that htmx
  requests when a filter changes or a page turns.

Targets (issue 3): <= 2 ms in the database, <= 50 ms for the whole view.

`bench/ledger.py` calls `main()` after filling the bench database; run alone, this script fills
`<DATABASE_URL name>_bench` up to 1M records first (it never drops it).
"""

from __future__ import annotations

import json
import statistics
import time
from unittest import mock

from _common import bench_line, fill_ledger, setup_django

RECORDS = 1_000_000
RUNS = 25
FILTERS = {"event": "agent.decided", "team": "3"}
BENCH_USER = "bench-compliance"
HTMX = {"HX-Request": "true", "HX-Target": "log-results"}


def _compliance_client():
    """A test Client signed in as a compliance officer, without writing to the ledger.

    The role service and `force_login` would each append a ledger record (role change,
    sign-in); a benchmark must leave the log as it found it, so the user joins the role's
    group directly and the session is written by hand.
    """
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import Client

    from governance.models import User
    from governance.roles import Role

    user, _ = User.objects.get_or_create(username=BENCH_USER)
    user.groups.add(Group.objects.get(name=Role.COMPLIANCE.value))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    client = Client(HTTP_HOST="localhost")  # an ALLOWED_HOSTS name whatever DEBUG is
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    return client, user


def _page_queryset(user, filters: dict, *, before: int | None = None):
    """The page query exactly as the log view builds it (keyset_page's first query)."""
    from governance.decisions import DecisionFilterForm, visible_decisions
    from governance.log_queries import LIST_COLUMNS, PAGE_SIZE

    form = DecisionFilterForm(filters)
    assert form.is_valid(), form.errors
    records = form.to_filter().apply(visible_decisions(user)).only(*LIST_COLUMNS)
    if before is not None:
        records = records.filter(seq__lt=before)
    return records.order_by("-seq")[: PAGE_SIZE + 1]


def _offset_queryset(user, filters: dict, offset: int):
    from governance.decisions import DecisionFilterForm, visible_decisions
    from governance.log_queries import LIST_COLUMNS, PAGE_SIZE

    form = DecisionFilterForm(filters)
    assert form.is_valid(), form.errors
    records = form.to_filter().apply(visible_decisions(user)).only(*LIST_COLUMNS)
    return records.order_by("-seq")[offset : offset + PAGE_SIZE + 1]


def _execution_ms(queryset) -> float:
    """PostgreSQL's execution time for the query (median of RUNS, after one warm-up)."""
    from django.db import connection

    sql, params = queryset.query.sql_with_params()
    timings = []
    with connection.cursor() as cursor:
        for _ in range(RUNS + 1):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            timings.append(plan[0]["Execution Time"])
    return statistics.median(timings[1:])


def _view_ms(client, url: str, headers: dict | None = None) -> float:
    """The whole request, median of RUNS after one warm-up."""
    timings = []
    for _ in range(RUNS + 1):
        started = time.perf_counter()
        response = client.get(url, headers=headers or {})
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(timings[1:])


def _offset_keyset_page(offset: int):
    """A stand-in for keyset_page that fetches the same page with OFFSET (the baseline)."""
    from governance.log_queries import LIST_COLUMNS, PAGE_SIZE, LogPage

    def page(records, *, before=None, after=None, size=PAGE_SIZE):
        rows = list(records.only(*LIST_COLUMNS).order_by("-seq")[offset : offset + size + 1])
        return LogPage(
            records=rows[:size],
            has_newer=offset > 0,
            has_older=len(rows) > size,
            newer_cursor=rows[0].seq if rows else 0,
            older_cursor=rows[min(len(rows), size) - 1].seq if rows else 0,
            is_first=offset == 0,
        )

    return page


def main() -> None:
    from django.db import connection
    from django.utils.http import urlencode

    from governance.models import DecisionRecord

    client, user = _compliance_client()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE governance_decisionrecord")
    total = DecisionRecord.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    # Setup only, not measured: where "near the end" is for the filtered baseline.
    matching = DecisionRecord.objects.filter(
        event=FILTERS["event"], team_id=FILTERS["team"]
    ).count()
    near_end_all = max(total - 1000, 0)
    near_end_filtered = max(matching - 60, 0)
    # The keyset equivalent of the filtered page near the end starts below this seq.
    deep_before = (
        _offset_queryset(user, FILTERS, near_end_filtered - 1).values_list("seq", flat=True).first()
    )
    print(
        f"# log page: {total:,} records, {matching:,} match {urlencode(FILTERS)}; "
        f"{RUNS} runs each, medians",
        flush=True,
    )

    cases = [
        ("ledger_page_newest", {}, None, near_end_all),
        ("ledger_page_filtered", FILTERS, None, near_end_filtered),
        ("ledger_page_filtered_deep", FILTERS, deep_before, near_end_filtered),
    ]
    for name, filters, before, offset in cases:
        keyset = _execution_ms(_page_queryset(user, filters, before=before))
        offset_db = _execution_ms(_offset_queryset(user, filters, offset))
        bench_line(f"{name}_db", keyset, "ms", offset_db)

        query = urlencode({**filters, **({"before": before} if before else {})})
        url = "/decisions/" + (f"?{query}" if query else "")
        view = _view_ms(client, url)
        same_page = "/decisions/" + (f"?{urlencode(filters)}" if filters else "")
        with mock.patch("governance.log_views.keyset_page", _offset_keyset_page(offset)):
            offset_view = _view_ms(client, same_page)
        bench_line(f"{name}_view", view, "ms", offset_view)
        if name == "ledger_page_filtered":
            # What htmx asks for when a filter changes or a page turns: the table alone.
            partial = _view_ms(client, url, HTMX)
            with mock.patch("governance.log_views.keyset_page", _offset_keyset_page(offset)):
                offset_partial = _view_ms(client, same_page, HTMX)
            bench_line(f"{name}_htmx_view", partial, "ms", offset_partial)


if __name__ == "__main__":
    setup_django(fresh=False)
    from governance.models import DecisionRecord

    have = DecisionRecord.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    if have < RECORDS:
        seconds = fill_ledger(RECORDS - have)
        print(f"# filled {RECORDS - have:,} records in {seconds:.0f} s", flush=True)
    main()
