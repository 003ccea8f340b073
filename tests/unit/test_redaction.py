"""Configured secrets and SASL auth bytes never reach a log record's message."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from streams.ops import redaction
from streams.settings import Settings

PASSWORD = "pa'ss\\wörd-7"
TOKEN = "web-token-42"


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Records of the ``credence-test`` logger with the redaction installed, at DEBUG."""
    factory = logging.getLogRecordFactory()
    redaction.install(Settings(sasl_password=PASSWORD, web_token=TOKEN).secrets())
    seen: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = seen.append  # type: ignore[method-assign]
    logger = logging.getLogger("credence-test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield seen
    logger.removeHandler(handler)
    logging.setLogRecordFactory(factory)


class SaslAuthenticateRequest:
    def __init__(self, auth: bytes) -> None:
        self.auth = auth

    def __repr__(self) -> str:  # as aiokafka's protocol structs print themselves
        return f"SaslAuthenticateRequest_v1(sasl_auth_bytes={self.auth!r})"


@pytest.mark.parametrize(
    ["msg", "args", "expected"],
    [
        pytest.param("Request to %s:%d %d: %s",
                     ("k", 9092, 3, SaslAuthenticateRequest(b"alice\x00alice\x00" + PASSWORD.encode())),
                     "Request to k:9092 3: SaslAuthenticateRequest_v1(sasl_auth_bytes=***)", id="sasl request"),
        pytest.param("%s", (SaslAuthenticateRequest(b"n,,n=alice,r=x'\"y"),),
                     "SaslAuthenticateRequest_v1(sasl_auth_bytes=***)", id="scram bytes, both quotes"),
        pytest.param("Response: SaslAuthenticateResponse_v1(error_code=0, auth_bytes=b'v=abc', x=1)", (),
                     "Response: SaslAuthenticateResponse_v1(error_code=0, auth_bytes=***, x=1)", id="response"),
        pytest.param("password is %s", (PASSWORD,), "password is ***", id="secret in args"),
        pytest.param(f"token {TOKEN} in the message", (), "token *** in the message", id="secret in msg"),
        pytest.param("config %r", ({"p": PASSWORD},), "config {'p': \"***\"}", id="secret in a str repr"),  # it holds a ': repr quotes with "
        pytest.param("raw %r", (PASSWORD.encode(),), 'raw b"***"', id="secret in a bytes repr"),
        pytest.param("nothing %s here", ("secret",), "nothing secret here", id="untouched"),
    ],
)  # fmt: skip
def test_messages_are_redacted(records, msg, args, expected):
    logging.getLogger("credence-test").debug(msg, *args)
    (record,) = records
    assert record.getMessage() == expected
    formatted = logging.Formatter("%(levelname)s %(message)s").format(record)
    assert formatted == f"DEBUG {expected}"


def test_secrets_are_the_set_secret_settings():
    assert Settings(sasl_password="p", web_token="t").secrets() == ["p", "t"]
    assert Settings().secrets() == []
