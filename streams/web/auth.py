"""Bearer-token authentication of the views that serve personal data (IP addresses)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class Denial:
    """The JSON answer to a request that may not be served."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(given: str | None, expected: str) -> bool:
    if given is None or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def check_bearer(headers: Mapping[str, str], expected: str) -> Denial | None:
    """``None`` when ``headers`` carry the bearer token ``expected``; else why not: 403
    while no token is configured (the endpoint is off), 401 without or with a wrong one."""
    if not expected:
        return Denial(403, {"error": "disabled", "detail": "traceability lists hold IP addresses and are served "
                            "only with a bearer token: set CREDENCE_WEB_TOKEN on the workers to enable this endpoint"})
    given = bearer_token(headers)
    if token_matches(given, expected):
        return None
    if given is None:
        challenge, detail = 'Bearer realm="credence"', "send Authorization: Bearer <CREDENCE_WEB_TOKEN>"
    else:
        challenge, detail = 'Bearer realm="credence", error="invalid_token"', "wrong token"
    return Denial(401, {"error": "unauthorized", "detail": detail}, {"WWW-Authenticate": challenge, **NO_STORE})
