"""Suite-wide fixtures and the rule for tests that need real services.

Tests marked `postgres`, `redis`, `browser` or `worker` need that service. Without it they skip
with a message on a laptop; when `CI` is set they fail, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from functools import cache

import pytest
from django.conf import settings

IN_CI = os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}
CHROMIUM = "/usr/bin/chromium"


@cache
def postgres_problem() -> str | None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        return "DATABASE_URL does not point at PostgreSQL (the suite is running on SQLite)"
    return None


@cache
def redis_problem() -> str | None:
    from console.health import check_broker

    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return "CELERY_BROKER_URL does not point at Redis"
    ok, detail = check_broker(settings.CELERY_BROKER_URL)
    return None if ok else f"Redis at CELERY_BROKER_URL is {detail}"


@cache
def browser_problem() -> str | None:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


SERVICE_CHECKS = {
    "postgres": (postgres_problem,),
    "redis": (redis_problem,),
    "browser": (browser_problem,),
    "worker": (postgres_problem, redis_problem),
}


def pytest_runtest_setup(item):
    for marker, checks in SERVICE_CHECKS.items():
        if item.get_closest_marker(marker) is None:
            continue
        for check in checks:
            problem = check()
            if problem is None:
                continue
            if IN_CI:
                pytest.fail(f"CI requires this service ({marker}): {problem}", pytrace=False)
            pytest.skip(f"{marker}: {problem}")


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    return [
        f"steward: database {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST') or ''} "
        f"{db['NAME']}; broker {settings.CELERY_BROKER_URL.split('@')[-1]}; CI={IN_CI}",
    ]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Hashing with the production hasher costs ~0.3 s per password; tests hash many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo_people(db):
    """The six demo personas and two teams, created by the real seeding code."""
    from console.management.commands.seed_demo import seed_people
    from governance.models import User

    seed_people(settings.STEWARD_DEMO_PASSWORD)
    return {user.username: user for user in User.objects.all()}
