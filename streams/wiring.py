"""The one place a worker's agents, tables, timers, web pages and rebalance hooks are
put on the app. Importing a ``streams`` module registers nothing: each module that
needs the app has a ``register`` function, called here."""

from __future__ import annotations

from faust import App

from streams.app import create_app
from streams.faust_ext import restore
from streams.kafka.publish import Publisher
from streams.kafka.topics import OUTPUTS, Topics
from streams.ops import gc_freeze, lag, restore_watchdog, warm_up
from streams.processing import signal_processor, team_agent
from streams.settings import Settings
from streams.web import exposition, views


def build_app(settings: Settings) -> App:
    """The app with everything a worker runs registered on it."""
    app = create_app(settings)
    topics = Topics(app, settings.topic_prefix)
    publisher = Publisher(lambda: app.producer, {name: topics.cluster_name(name) for name in OUTPUTS})
    lag.register(app, topics.logical_name)
    restore_watchdog.register(app, settings.restore_stall_seconds)
    warm_up.register(app, (topics.cluster_name(name) for name in OUTPUTS))
    gc_freeze.register(app)
    signal_processor.register(app, settings, topics, publisher)
    teams = team_agent.register(app, settings, topics, publisher)
    restore.register(app)  # after every table
    exposition.register(app)
    views.register(app, settings, teams)
    return app
