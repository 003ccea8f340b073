"""The one place a worker's agents, tables, timers, web pages and rebalance hooks are
put on the app: each module below registers its own with Faust's decorators when it is
imported, and nothing else imports them."""

from __future__ import annotations

from faust import App


def wire() -> App:
    """The app with everything a worker runs registered on it."""
    from streams.app import app
    from streams.ops import lag, restore_progress, restore_watchdog, warm_up  # noqa: F401
    from streams.processing import signal_processor, team_agent  # noqa: F401
    from streams.web import exposition, views  # noqa: F401

    return app
