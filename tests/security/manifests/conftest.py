"""The integration suite's cluster (the API emulator, a real Prometheus, the real operator)."""

from ...integration.conftest import env, live_metrics

__all__ = ["env", "live_metrics"]
