"""Faust's aiohttp web server without Faust's own views, as the ``credence://`` web driver.

Faust mounts ``/router`` (cluster topology, table key owners), ``/table`` (raw table
values: customer states with evidence IP addresses), and, by settings, ``/`` (an index or
sensor statistics), ``/assignment``, ``/graph`` and ``/performance``, none behind any
authentication. Only Credence's own views (``streams.web.views``, ``/metrics``) are served:
every other path is a 404. Credence routes to the team table's owner itself
(``app.router`` is used, its web views are not).

Names it depends on, and why (faust-streaming 0.15.3 ``faust.web.base.Web``): the class
attributes ``default_blueprints``, ``production_blueprints``, ``debug_blueprints`` and
``optional_blueprints``, every list ``_enabled_blueprints`` picks Faust's views from;
emptied here. A release that adds another list serves its views again
(``tests/unit/test_faust_contract.py`` checks that none is enabled).
"""

from __future__ import annotations

from faust.web import drivers
from faust.web.drivers.aiohttp import Web as AiohttpWeb

#: ``web`` setting scheme of :class:`Web`
SCHEME = "credence"


class Web(AiohttpWeb):
    default_blueprints = production_blueprints = debug_blueprints = optional_blueprints = ()


def register() -> None:
    drivers.DRIVERS.aliases[SCHEME] = f"{__name__}:Web"
