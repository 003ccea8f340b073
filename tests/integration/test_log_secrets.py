"""No secret in a worker's log at DEBUG: a worker on a SASL/PLAIN listener of a real
Apache Kafka broker (aiokafka logs every request at DEBUG, the SASL handshake with the
password included), and a traceability request with the web token."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.processes import free_port
from tests.integration.test_web import get
from tests.support.apache_kafka import ApacheKafka
from tests.support.workers import Deployment

USER, PASSWORD, TOKEN = "alice", "Pw-for-alice-9f3c1e", "web-token-5d2b7a"
_LOOPBACK = "127.0.0.1"


class SaslKafka(ApacheKafka):
    """The test broker with a second, SASL_PLAINTEXT listener that knows one PLAIN user."""

    def __init__(self) -> None:
        super().__init__()
        self.sasl_port = free_port()

    @property
    def sasl_bootstrap(self) -> str:
        return f"{_LOOPBACK}:{self.sasl_port}"

    def properties(self) -> dict[str, str]:
        props = super().properties()
        listener = f"SASL_PLAINTEXT://{self.sasl_bootstrap}"
        jaas = (f'org.apache.kafka.common.security.plain.PlainLoginModule required username="{USER}" '
                f'password="{PASSWORD}" user_{USER}="{PASSWORD}";')
        return props | {
            "listeners": f"{props['listeners']},{listener}",
            "advertised.listeners": f"{props['advertised.listeners']},{listener}",
            "listener.security.protocol.map": f"{props['listener.security.protocol.map']},SASL_PLAINTEXT:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        }


@pytest.mark.kafka
def test_no_secret_in_a_debug_log_of_a_sasl_worker(tmp_path: Path) -> None:
    with SaslKafka() as kafka:
        deployment = Deployment(kafka.bootstrap, tmp_path)  # topics and input over PLAINTEXT
        deployment.apply_topics()
        deployment.env_extra.update({
            "KAFKA_BOOTSTRAP_SERVERS": kafka.sasl_bootstrap,
            "CREDENCE_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "CREDENCE_SASL_MECHANISM": "PLAIN",
            "CREDENCE_SASL_USERNAME": USER,
            "CREDENCE_SASL_PASSWORD": PASSWORD,
            "CREDENCE_WEB_TOKEN": TOKEN,
            "CREDENCE_LOG_LEVEL": "DEBUG",
        })
        worker = deployment.start_worker()
        try:
            deployment.produce([("customer-directory", "c1", {"customer_id": "c1", "team_id": "team-a",
                                                             "region": "east", "rep_id": "r1"})])
            # consumed over the SASL listener: the worker authenticated
            worker.wait_for_metric("credence_input_events_total", 1, deadline_s=120,
                                   topic="customer-directory", outcome="accepted")
            end = time.monotonic() + 60
            while get(worker, "/teams/team-a/traceability.csv", token=TOKEN)[0] == 503:
                assert time.monotonic() < end, worker.log_tail()
                time.sleep(0.3)
        finally:
            deployment.stop()
    log = worker.log_path.read_bytes()
    # the handshake was logged, so the test looks at the lines that held the password
    assert b"SaslAuthenticateRequest" in log and b"sasl_auth_bytes=***" in log, worker.log_tail()
    for secret in (PASSWORD, TOKEN):
        assert secret.encode() not in log, f"{secret} in the worker's DEBUG log"
