"""Security headers, the CSP's ban on inline script, and error pages that look like the product."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PAGES = ["/", "/accounts/password/", "/accounts/login/", "/no-such-page/"]


@pytest.fixture
def admin_client(client, demo_people):
    client.force_login(demo_people["admin"])
    return client


def test_csp_allows_scripts_and_styles_from_ourselves_only(admin_client):
    csp = admin_client.get("/")["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp


@pytest.mark.parametrize("path", PAGES)
def test_pages_carry_no_inline_script_or_style(admin_client, path):
    html = admin_client.get(path).content.decode()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, f"inline script on {path}: {tag}"
    for body in re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S):
        assert body.strip() == "", f"script body on {path}: {body[:80]}"
    assert not re.search(r"\sstyle=", html), f"inline style attribute on {path}"
    assert "<style" not in html
    assert not re.search(r"\son[a-z]+=", html), f"inline event handler on {path}"


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_nothing_from_other_origins(admin_client, path):
    html = admin_client.get(path).content.decode()
    assert not re.search(r"(src|href)=\"(https?:)?//", html)


def test_security_headers(admin_client):
    response = admin_client.get("/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_not_found_page_looks_like_the_product(admin_client):
    response = admin_client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Not found" in html
    assert 'class="sidebar"' in html


def test_server_error_page_renders_without_context(rf):
    from console.views import server_error

    response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.content


def test_stale_csrf_token_gets_a_readable_page(demo_people):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "admin", "password": "x"})
    assert response.status_code == 403
    assert b"This form has expired" in response.content


def test_static_files_are_served_by_the_app(admin_client):
    for path in ("/static/css/steward.css", "/static/django_htmx/htmx-2.min.js"):
        response = admin_client.get(path)
        assert response.status_code == 200, path
