"""Builds the bare Faust app from settings (and the worker class it runs with).

Topics, tables, agents and timers are put on it by :func:`streams.wiring.build_app`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import faust

from streams.faust_ext import transport, versions, worker
from streams.faust_ext import web as web_driver
from streams.kafka.client import client_options
from streams.kafka.partitioner import KeyHashPartitioner
from streams.ops import log_limit
from streams.settings import Settings


class Worker(worker.Worker):
    """``credence worker``: repeated warnings and errors are rate-limited
    (:mod:`streams.ops.log_limit`); SIGUSR1 dumps the consumer too."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        log_limit.install(logger)


def _credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    if settings.security_protocol == "PLAINTEXT":
        return None
    ssl_context = client_options(settings).get("ssl_context")
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password,
            mechanism=settings.sasl_mechanism,
            ssl_context=ssl_context,
        )
    return faust.SSLCredentials(ssl_context)


def create_app(settings: Settings) -> faust.App:
    versions.check()  # before any override is registered
    if not settings.bootstrap_servers:
        raise SystemExit("KAFKA_BOOTSTRAP_SERVERS is not set (use `credence run` for the embedded broker)")
    transport.register(idempotence=settings.producer_idempotence, fetch_max_wait_ms=settings.fetch_max_wait_ms)
    web_driver.register()
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    brokers = [f"{transport.SCHEME}://{s.strip()}" for s in settings.bootstrap_servers.split(",")]
    return faust.App(
        settings.app_id,
        broker=brokers,
        broker_credentials=_credentials(settings),
        store="rocksdb://",
        datadir=settings.data_dir,
        processing_guarantee="at_least_once",  # deltas are idempotent: README, Delivery
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=True,  # Faust's own changelog topics; ours come from topics.yaml
        topic_partitions=6,
        web_enabled=True,
        web=f"{web_driver.SCHEME}://",  # Faust's own views are not served
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        canonical_url=f"http://{settings.web_advertised_host or settings.web_host}:{settings.web_port}",
        web_in_thread=False,
        producer_acks=-1,
        producer_partitioner=KeyHashPartitioner(),
        producer_max_request_size=8 * 1024 * 1024 + 65_536,  # the state changelog's max.message.bytes
        # aiokafka sends one batch per partition at a time: 16 KiB batches (its default)
        # made a flush of thousands of states wait for hundreds of round trips
        producer_max_batch_size=512 * 1024,  # below every topic's max.message.bytes (1 MiB)
        broker_commit_interval=1.0,
        broker_max_poll_records=settings.batch_max_events,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.session_timeout_seconds / 5,
        table_standby_replicas=0,
        autodiscover=False,
        loghandlers=[],
        Worker=Worker,
    )
