"""The basic app with /metrics and /health turned on."""

from __future__ import annotations

from chopin_core import Chopin

from .basic import router

app = Chopin(router).with_metrics("/metrics").with_health("/health")
