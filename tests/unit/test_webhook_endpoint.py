"""POST /hooks/<workflow-slug>/ and the page that sets a workflow's webhook up."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.test import Client

from agents.engine import triggers
from agents.models import Run
from governance.models import DecisionRecord
from tests.support.patterns import build_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def hooked(demo_people):
    """The sequential demo flow with a webhook trigger running as the operator."""
    from agents import versions

    flow, _, _ = build_all(demo_people)["sequential"]
    definition = dict(flow.published_version.definition)
    definition["triggers"] = [{"type": "webhook", "run_as": "operator"}]
    versions.save_draft(flow, definition, actor=demo_people["builder"])
    versions.submit(flow, actor=demo_people["builder"])
    versions.approve(flow, actor=demo_people["approver"], number=2)
    flow.refresh_from_db()
    return flow


@pytest.fixture
def secret(hooked, demo_people):
    return triggers.rotate_webhook_secret(hooked, actor=demo_people["builder"])


def post(slug, body: bytes, *, secret=None, timestamp=None, signature=None):
    client = Client(enforce_csrf_checks=True)  # no session, no CSRF token: like a real caller
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {"HTTP_X_STEWARD_TIMESTAMP": str(stamp)}
    if signature is None and secret is not None:
        signature = triggers.sign(secret, int(stamp), body)
    if signature is not None:
        headers["HTTP_X_STEWARD_SIGNATURE"] = signature
    return client.post(f"/hooks/{slug}/", data=body, content_type="application/json", **headers)


def test_a_webhook_start_takes_a_fixed_number_of_statements(hooked, secret):
    """Each accepted webhook is a run started in one transaction, with no savepoint inside
    it and no ORM lookups to compile (bench/engine.py's webhook throughput)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    post(hooked.slug, b'{"amount": 1}', secret=secret)
    with CaptureQueriesContext(connection) as queries:
        assert post(hooked.slug, b'{"amount": 2}', secret=secret).status_code == 202
    statements = [q["sql"] for q in queries.captured_queries]
    # The test's own transaction turns the webhook's into exactly one savepoint.
    assert sum(sql.startswith("SAVEPOINT") for sql in statements) == 1, statements
    others = [sql for sql in statements if "SAVEPOINT" not in sql]
    # workflow, trigger owner, permission, run, agent version, first step, delivery, ledger
    assert len(others) <= 8, "\n".join(others)


def test_a_signed_request_starts_a_run_and_answers_202(hooked, secret):
    response = post(hooked.slug, b'{"amount": 12}', secret=secret)
    assert response.status_code == 202, response.content
    run = Run.objects.get()
    body = response.json()
    assert body["run"] == str(run.pk)
    assert body["status_url"] == f"http://testserver/api/v1/runs/{run.pk}/"
    assert (run.trigger, run.input) == (Run.Trigger.WEBHOOK, {"amount": 12})


def test_a_bad_signature_is_401(hooked, secret):
    response = post(hooked.slug, b'{"amount": 12}', signature="sha256=" + "0" * 64)
    assert response.status_code == 401
    assert "X-Steward-Signature" in response.json()["error"]
    assert not Run.objects.exists()


def test_a_stale_timestamp_is_401(hooked, secret):
    response = post(hooked.slug, b'{"amount": 12}', secret=secret, timestamp=int(time.time()) - 900)
    assert response.status_code == 401
    assert "replay window" in response.json()["error"]


def test_a_replayed_request_is_409(hooked, secret):
    stamp = int(time.time())
    signature = triggers.sign(secret, stamp, b'{"amount": 12}')
    first = post(hooked.slug, b'{"amount": 12}', timestamp=stamp, signature=signature)
    assert first.status_code == 202
    again = post(hooked.slug, b'{"amount": 12}', timestamp=stamp, signature=signature)
    assert again.status_code == 409
    assert Run.objects.count() == 1


def test_an_unknown_workflow_is_404(hooked, secret):
    response = post("no-such-flow", b"{}", secret=secret)
    assert response.status_code == 404
    assert response.json() == {"error": "no webhook here"}


def test_a_workflow_without_a_secret_is_404_too(hooked):
    assert post(hooked.slug, b"{}", signature="sha256=00").status_code == 404


@pytest.mark.parametrize(
    ("timestamp", "status"),
    [("", 400), ("soon", 400), ("9" * 5000, 400), ("1" + "0" * 400, 400)],
)
def test_malformed_timestamps_are_400_never_500(hooked, secret, timestamp, status):
    response = post(hooked.slug, b"{}", timestamp=timestamp, signature="sha256=00")
    assert response.status_code == status
    assert "X-Steward-Timestamp" in response.json()["error"]


def test_input_that_does_not_fit_is_400_naming_the_field(hooked, secret):
    response = post(hooked.slug, b'{"amount": "lots"}', secret=secret)
    assert response.status_code == 400
    assert "expected a number" in response.json()["fields"]["amount"]
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    "body",
    [b'{"amount": NaN}', b'{"amount": 1e999}', b'{"amount": "NaN"}', b"[1, 2]", b"{"],
)
def test_bodies_the_ledger_cannot_hold_are_400(hooked, secret, body):
    response = post(hooked.slug, body, secret=secret)
    assert response.status_code == 400, response.content
    assert not Run.objects.exists()


def test_only_post_is_answered(hooked):
    response = Client().get(f"/hooks/{hooked.slug}/")
    assert response.status_code == 405
    assert response.json()["error"]


def test_an_owner_who_lost_run_is_403(hooked, secret, demo_people):
    from governance import roles
    from governance.roles import Role

    roles.revoke_role(demo_people["operator"], Role.OPERATOR, actor=None)
    response = post(hooked.slug, b'{"amount": 1}', secret=secret)
    assert response.status_code == 403


# --- The set-up page ----------------------------------------------------------------------------


def test_the_setup_page_shows_the_url_and_how_to_sign(client, hooked, secret, demo_people):
    client.force_login(demo_people["builder"])
    response = client.get(f"/workflows/{hooked.pk}/webhook/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"http://testserver/hooks/{hooked.slug}/" in html
    assert "X-Steward-Signature: sha256=" in html
    assert "openssl dgst -sha256 -hmac" in html
    assert "hmac.new(" in html
    assert "A secret is set." in html
    assert secret not in html
    assert not re.search(r"\sstyle=|\son[a-z]+=", html)


@pytest.mark.parametrize("username", ["operator", "approver", "builder2"])
def test_only_people_who_may_change_the_workflow_see_the_setup(
    client, hooked, demo_people, username
):
    client.force_login(demo_people[username])
    assert client.get(f"/workflows/{hooked.pk}/webhook/").status_code == 404
    assert client.post(f"/workflows/{hooked.pk}/webhook/").status_code == 404


def test_rotating_shows_the_new_secret_once_and_it_signs(client, hooked, demo_people):
    client.force_login(demo_people["builder"])
    response = client.post(f"/workflows/{hooked.pk}/webhook/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = re.search(r'<code class="secret mono">([^<]+)</code>', response.content.decode())[1]
    assert secret not in client.get(f"/workflows/{hooked.pk}/webhook/").content.decode()
    assert DecisionRecord.objects.filter(event="webhook.secret_rotated").exists()
    assert post(hooked.slug, json.dumps({"amount": 3}).encode(), secret=secret).status_code == 202


def test_the_page_warns_when_the_published_version_has_no_webhook(client, demo_people):
    flow, _, _ = build_all(demo_people)["sequential"]
    client.force_login(demo_people["builder"])
    html = client.get(f"/workflows/{flow.pk}/webhook/").content.decode()
    assert "No webhook trigger" in html


def test_the_engine_refuses_a_timestamp_beyond_a_float(hooked, secret):
    with pytest.raises(triggers.WebhookRefused) as refused:
        triggers.receive_webhook(hooked.slug, b"{}", "1" + "0" * 400, "sha256=00")
    assert refused.value.status in (400, 401)
