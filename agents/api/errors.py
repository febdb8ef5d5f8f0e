"""What every agent and connection endpoint shares: a strict JSON parser, and the services'
errors turned into answers that name the field (400) or give the reason (403).

A forbidden object never gets here: the restricted queryset answers 404 before."""

from __future__ import annotations

import codecs
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from agents import jsonsafe
from agents.connections import ConnectionFieldError
from agents.definitions import DefinitionError
from agents.tryit import TryError
from agents.versions import FourEyesViolation, VersionError


class StrictJSONParser(JSONParser):
    """JSON without NaN, infinities, integers beyond 2**53 or nesting deeper than 64 levels:
    a 400 naming the problem, never a 500 further down."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            return jsonsafe.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None


class FourEyes(exceptions.PermissionDenied):
    default_code = "four_eyes"


@contextmanager
def service_errors():
    """Run a service call; its errors become 400s naming the field or 403s with the reason."""
    try:
        yield
    except DefinitionError as exc:
        # A kind that refuses its whole config names it "config" itself: not config.config.
        path = "config" if exc.path == "config.config" else exc.path
        raise exceptions.ValidationError({path: [exc.problem]}) from None
    except (VersionError, ConnectionFieldError, TryError) as exc:
        raise exceptions.ValidationError({exc.field: [exc.message]}) from None
    except FourEyesViolation as exc:
        raise FourEyes(str(exc)) from None
    except DjangoPermissionDenied as exc:
        raise exceptions.PermissionDenied(str(exc) or None) from None
