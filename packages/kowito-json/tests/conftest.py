"""Test settings for kowito-json."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Hypothesis's timing checks judge the machine, not the code: on a shared CI machine one
# draw can stall for seconds (seen: test_bind_encoder, 1.96 s for one input).  The
# properties are checked as before; only the too_slow health check and the deadline go.
settings.register_profile("chopin", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("chopin")
