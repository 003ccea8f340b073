"""No secret in any log record, at any level.

aiokafka logs every request at DEBUG, the SASL handshake included
(``SaslAuthenticateRequest_v1(sasl_auth_bytes=b'alice\\x00alice\\x00<password>')``), and
any library may put a configured secret into a message or its arguments. Every record's
message is redacted when it is formatted: the configured secrets (``Settings.secrets``,
as text and as they appear inside a ``str`` or ``bytes`` repr) and every SASL
``auth_bytes`` value become ``***``. The record class is replaced, not a handler's
filter, so the handlers Faust (mode) sets up later, and records made before that, are
covered as well. Traceback text is not rewritten.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
#: ``sasl_auth_bytes=b'...'`` (request) and ``auth_bytes=b'...'`` (response), either quote
_AUTH_BYTES = re.compile(r"""(auth_bytes=)b(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {form for s in secrets if s for form in (s, repr(s)[1:-1], repr(s.encode())[2:-1])}
        # longest first, so a secret is not half-replaced by a shorter one it contains
        self._secrets = re.compile("|".join(map(re.escape, sorted(forms, key=len, reverse=True)))) if forms else None

    def __call__(self, text: str) -> str:
        text = _AUTH_BYTES.sub(rf"\1{MASK}", text)
        return self._secrets.sub(MASK, text) if self._secrets is not None else text


def install(secrets: Iterable[str]) -> None:
    """Redact every log record's message from now on (the process's record factory)."""
    redact = Redactor(secrets)

    class RedactedRecord(logging.LogRecord):
        def getMessage(self) -> str:
            return redact(super().getMessage())

    logging.setLogRecordFactory(RedactedRecord)
