"""The embedded broker fixture of the integration tests, shared with tests/ops."""

from tests.integration.conftest import tansu  # noqa: F401  (session-scoped Tansu broker)
