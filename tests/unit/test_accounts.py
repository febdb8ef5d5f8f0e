import pytest
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_sign_in_page_renders(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Sign in" in response.content


def test_wrong_password_shows_an_error_and_signs_nobody_in(client):
    UserFactory(username="dana")
    response = client.post(reverse("login"), {"username": "dana", "password": "nope"})
    assert response.status_code == 200
    assert b"That username and password do not match" in response.content
    assert "_auth_user_id" not in client.session


def test_sign_in_lands_on_the_home_page(client):
    UserFactory(username="dana")
    response = client.post(reverse("login"), {"username": "dana", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_sign_in_follows_a_safe_next_but_not_an_outside_one(client):
    UserFactory(username="dana")
    ok = client.post(
        reverse("login") + "?next=/accounts/password/",
        {"username": "dana", "password": PASSWORD, "next": "/accounts/password/"},
    )
    assert ok["Location"] == "/accounts/password/"
    client.logout()
    evil = client.post(
        reverse("login"),
        {"username": "dana", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert evil["Location"] == reverse("home")


def test_sign_out_needs_post(client):
    client.force_login(UserFactory())
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_inactive_accounts_cannot_sign_in(client):
    UserFactory(username="gone", is_active=False)
    response = client.post(reverse("login"), {"username": "gone", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert response.status_code == 200


def test_password_change_requires_the_old_password_and_applies(client):
    user = UserFactory()
    client.force_login(user)
    bad = client.post(
        reverse("password_change"),
        {
            "old_password": "wrong",
            "new_password1": "A-new-Pass-1234",
            "new_password2": "A-new-Pass-1234",
        },
    )
    assert bad.status_code == 200
    assert b"Your old password was entered incorrectly" in bad.content
    good = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "A-new-Pass-1234",
            "new_password2": "A-new-Pass-1234",
        },
    )
    assert good.status_code == 302
    user.refresh_from_db()
    assert user.check_password("A-new-Pass-1234")
