"""What the outbound door raises besides the taxonomy's SystemUnavailable."""

from __future__ import annotations


class OutboundError(Exception):
    """A request Steward will not make or could not use. `reason` names it in records."""

    reason = "outbound_error"


class OutboundRefused(OutboundError, ValueError):
    """The destination breaks a rule of this package (scheme, port, address, redirect...)."""

    reason = "refused"


class ResponseTooLarge(OutboundError):
    reason = "response_too_large"


class AuthFailed(OutboundError):
    """The connection's credentials cannot be used (rejected by a token endpoint, malformed)."""

    reason = "auth_failed"


def scrub(text: str, secrets) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text
