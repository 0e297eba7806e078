"""The integration suite's cluster (the API emulator, a real Prometheus, the real operator)
and the operator suite's typed samples."""

from ...integration.conftest import env, live_metrics
from ...operator.conftest import embedder, sample_tiers

__all__ = ["embedder", "env", "live_metrics", "sample_tiers"]
