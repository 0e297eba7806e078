"""Typed keys of what a server's aiohttp application carries."""

from __future__ import annotations

from aiohttp import web

from .lifecycle import Lifecycle
from .request_body import BodyBudget
from .serve_config import ServeConfig

LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
CONFIG = web.AppKey("config", ServeConfig)
BUDGET = web.AppKey("body_budget", BodyBudget)
