"""Steward settings, read from the environment (see README: Configuration).

Unset variables fall back to safe local defaults: SQLite and a filesystem broker under var/.
With DEBUG off, start-up refuses the defaults that are only safe on a laptop.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from console.env import Env

BASE_DIR = Path(__file__).resolve().parent.parent
env = Env()

VAR_DIR = env.path("STEWARD_VAR_DIR", BASE_DIR / "var")
# Local state (SQLite file, embedded broker, collected static files) lives here; SQLite and
# WhiteNoise both expect their folders to exist.
(VAR_DIR / "staticfiles").mkdir(parents=True, exist_ok=True)

DEFAULT_SECRET_KEY = "django-insecure-steward-local-only-never-in-production"  # noqa: S105
DEFAULT_DEMO_PASSWORD = "steward-demo"  # noqa: S105

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", DEFAULT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])
STEWARD_DEMO_PASSWORD = env.str("STEWARD_DEMO_PASSWORD", DEFAULT_DEMO_PASSWORD if DEBUG else None)
# Fernet key(s), comma-separated, the first encrypts; with DEBUG on and unset, a local key is
# generated under VAR_DIR (governance.keys).
STEWARD_ENCRYPTION_KEY = env.str("STEWARD_ENCRYPTION_KEY")
# Path of the Ed25519 private key (PEM) that signs checkpoints and evidence bundles.
STEWARD_SIGNING_KEY = env.str("STEWARD_SIGNING_KEY")
# Checkpoints are also written here as files when set (e.g. a WORM bucket mount).
STEWARD_CHECKPOINT_DIR = env.path("STEWARD_CHECKPOINT_DIR")
# Largest canonical record the ledger accepts, in bytes.
STEWARD_LEDGER_MAX_RECORD_BYTES = env.int(
    "STEWARD_LEDGER_MAX_RECORD_BYTES", 256 * 1024, minimum=1024, maximum=16 * 1024 * 1024
)
# The ledger's append statement is prepared once per connection; turn off behind a pooler that
# cannot keep prepared statements (PgBouncer before 1.21 in transaction mode).
STEWARD_LEDGER_PREPARED = env.bool("STEWARD_LEDGER_PREPARED", default=True)
# Processes `verify_ledger` verifies a long ledger with, ranges at once (1: one process).
STEWARD_VERIFY_WORKERS = env.int("STEWARD_VERIFY_WORKERS", os.cpu_count() or 1, minimum=1)
# Background export files (they hold decisions outside the ledger) are removed after this.
STEWARD_EXPORT_RETENTION_HOURS = env.int("STEWARD_EXPORT_RETENTION_HOURS", 7 * 24, minimum=1)

if not DEBUG:
    if SECRET_KEY == DEFAULT_SECRET_KEY:
        raise ImproperlyConfigured(
            "Environment variable SECRET_KEY: the built-in development key is refused when "
            "DEBUG is off; set SECRET_KEY to a long random value."
        )
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            "Environment variable SECRET_KEY: too short or too simple for production "
            "(at least 50 characters with at least 5 distinct ones)."
        )
    if STEWARD_DEMO_PASSWORD == DEFAULT_DEMO_PASSWORD:
        raise ImproperlyConfigured(
            "Environment variable STEWARD_DEMO_PASSWORD: the published demo password is refused "
            "when DEBUG is off; unset it or choose another."
        )
    for _name in ("STEWARD_ENCRYPTION_KEY", "STEWARD_SIGNING_KEY"):
        if not env.is_set(_name):
            raise ImproperlyConfigured(
                f"Environment variable {_name}: required when DEBUG is off (local keys are "
                "generated only for development)."
            )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "Environment variable ALLOWED_HOSTS: must name the host(s) Steward is served on "
            "when DEBUG is off (comma-separated)."
        )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "guardian",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_htmx",
    "csp",
    "governance",
    "agents",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "console.middleware.SecurityHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "governance.authz_failures.CountRefusalsMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": env.database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'steward.sqlite3'}"),
}
if STEWARD_LEDGER_PREPARED and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # psycopg prepares nothing while the threshold is None (Django's default), not even a
    # statement that asks. Django's own cursors bind on the client and never prepare, so a
    # threshold no count reaches lets the ledger's append prepare itself and nothing else.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 2**31 - 1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "governance.User"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# guardian: no anonymous user row; anonymous visitors are denied by default.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", 8 * 3600, minimum=300)
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", True)
    # Load balancers probe over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    if env.bool("STEWARD_BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# No inline script anywhere: every script is a file served by the app itself.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "EXCEPTION_HANDLER": "governance.authz_failures.api_exception_handler",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Steward API",
    "DESCRIPTION": "Governance console for enterprise AI agents.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs page are for signed-in people (and API tokens) only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Agents and connections both have a "kind": name their enums apart.
    "ENUM_NAME_OVERRIDES": {
        "AgentKindEnum": "agents.models.Agent.Kind",
        "ConnectionKindEnum": "agents.models.Connection.Kind",
        # Runs, steps and escalations each have a status (and runs an outcome).
        "RunStatusEnum": "agents.models.Run.Status",
        "RunOutcomeEnum": "agents.models.Run.Outcome",
        "StepRunStatusEnum": "agents.models.StepRun.Status",
        "EscalationStatusEnum": "agents.models.Escalation.Status",
        "VersionStatusEnum": "agents.models.VersionStatus",
        "ResolveActionEnum": "agents.engine.escalations.ACTIONS",
    },
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.broker_url("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_IS_EMBEDDED = CELERY_BROKER_URL.startswith("filesystem://")
BROKER_DIR = VAR_DIR / "broker"
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", 300, minimum=5)
CELERY_TASK_SOFT_TIME_LIMIT = max(CELERY_TASK_TIME_LIMIT - 30, CELERY_TASK_TIME_LIMIT * 9 // 10)
# A Redis message not acked within the visibility timeout is handed to another worker, so it
# must exceed the longest a task may run (acks_late acks only at the end); the sweeper of
# expired step leases, not this timeout, is what recovers a killed worker's step quickly.
CELERY_VISIBILITY_TIMEOUT = env.int(
    "CELERY_VISIBILITY_TIMEOUT", 2 * CELERY_TASK_TIME_LIMIT, minimum=CELERY_TASK_TIME_LIMIT + 1
)
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND",
    f"file://{VAR_DIR / 'results'}" if CELERY_BROKER_IS_EMBEDDED else CELERY_BROKER_URL,
)
CELERY_TASK_DEFAULT_QUEUE = env.str("STEWARD_CELERY_QUEUE", "steward")
# A running step's lease, renewed while the agent works: how soon a dead worker's step is
# handed to another. Queued steps not picked up within the resend delay are sent again.
STEWARD_STEP_LEASE_SECONDS = env.int("STEWARD_STEP_LEASE_SECONDS", 15, minimum=2, maximum=600)
STEWARD_RESEND_AFTER_SECONDS = env.int("STEWARD_RESEND_AFTER_SECONDS", 30, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"level": "INFO"},
    },
}
