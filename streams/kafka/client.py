"""aiokafka client options shared by the admin, the demo producer and the tools."""

from __future__ import annotations

from typing import Any

from aiokafka.helpers import create_ssl_context

from streams.settings import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection keyword arguments for any aiokafka client."""
    opts: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in {"SSL", "SASL_SSL"}:
        opts["ssl_context"] = create_ssl_context(cafile=settings.ssl_cafile or None)
    if settings.security_protocol.startswith("SASL"):
        opts.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password,
        )
    return opts
