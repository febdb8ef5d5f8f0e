import pytest

from console.env import Env, EnvError, parse_database_url


def env(**values):
    return Env(values)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_bool_accepts_the_usual_spellings(raw, expected):
    assert env(DEBUG=raw).bool("DEBUG", default=not expected) is expected


def test_bool_default_when_unset_or_blank():
    assert env().bool("DEBUG", default=True) is True
    assert env(DEBUG="  ").bool("DEBUG", default=False) is False


def test_bool_rejects_anything_else_naming_the_variable():
    with pytest.raises(EnvError, match=r"DEBUG.*'maybe'"):
        env(DEBUG="maybe").bool("DEBUG", default=False)


def test_int_parses_and_checks_bounds():
    assert env(N="42").int("N", 1) == 42
    assert env().int("N", 7) == 7
    with pytest.raises(EnvError, match="N: expected a whole number; got '4x'"):
        env(N="4x").int("N", 1)
    with pytest.raises(EnvError, match="N: must be at least 5"):
        env(N="4").int("N", 10, minimum=5)
    with pytest.raises(EnvError, match="N: must be at most 9"):
        env(N="10").int("N", 1, maximum=9)


def test_list_splits_on_commas_and_refuses_empty_items():
    assert env(HOSTS="a.example, b.example").list("HOSTS") == ["a.example", "b.example"]
    assert env().list("HOSTS", ["x"]) == ["x"]
    with pytest.raises(EnvError, match="HOSTS: empty item"):
        env(HOSTS="a,,b").list("HOSTS")


def test_postgres_url_becomes_a_django_database():
    db = parse_database_url("postgres://app:s%40cret@db.internal:6543/steward?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("steward", "app", "s@cret")
    assert (db["HOST"], db["PORT"]) == ("db.internal", "6543")
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_psycopg_options_of_a_postgres_url_get_their_types():
    """As text, prepare_threshold broke every prepared statement ('>=' between int and str):
    the ledger's statements failed in workers handed a DATABASE_URL that carried it."""
    base = "postgres://app@db/steward"
    assert parse_database_url(f"{base}?prepare_threshold=5")["OPTIONS"] == {"prepare_threshold": 5}
    assert parse_database_url(f"{base}?prepare_threshold=None")["OPTIONS"] == {
        "prepare_threshold": None
    }
    binding = parse_database_url(f"{base}?server_side_binding=false&sslmode=require")
    assert binding["OPTIONS"] == {"server_side_binding": False, "sslmode": "require"}
    with pytest.raises(ValueError, match="prepare_threshold must be a whole number"):
        parse_database_url(f"{base}?prepare_threshold=lots")
    with pytest.raises(ValueError, match="server_side_binding must be true or false"):
        parse_database_url(f"{base}?server_side_binding=maybe")


def test_sqlite_urls_absolute_and_relative():
    assert parse_database_url("sqlite:////tmp/s.sqlite3")["NAME"] == "/tmp/s.sqlite3"
    assert parse_database_url("sqlite:///var/s.sqlite3")["NAME"] == "var/s.sqlite3"
    assert parse_database_url("sqlite:///x.db")["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://root@localhost/steward", "unsupported database scheme 'mysql'"),
        ("postgres://postgres@localhost", "no database name"),
        ("postgres://postgres:pw@localhost:notaport/x", "port is not a number"),
        ("sqlite://host/file.db", "sqlite URLs take no host"),
        ("sqlite:///", "no file in sqlite URL"),
    ],
)
def test_bad_database_urls_say_what_is_wrong(url, problem):
    with pytest.raises(EnvError, match=f"DATABASE_URL: {problem}"):
        env(DATABASE_URL=url).database("DATABASE_URL", "sqlite:///x.db")


def test_database_url_errors_never_echo_the_password():
    with pytest.raises(EnvError) as caught:
        env(DATABASE_URL="postgres://u:hunter2@h:bad/x").database("DATABASE_URL", "sqlite:///x")
    assert "hunter2" not in str(caught.value)


def test_broker_url_schemes():
    assert env(B="redis://127.0.0.1:6379/0").broker_url("B", "filesystem://").startswith("redis")
    assert env().broker_url("B", "filesystem://") == "filesystem://"
    with pytest.raises(EnvError, match="B: unsupported broker scheme 'http'"):
        env(B="http://broker").broker_url("B", "filesystem://")
