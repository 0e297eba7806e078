"""The operator's own /metrics and /healthz: reconciles, plan changes, models, planned cost."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .api import InferenceModelStatus
from .conditions import ALL_TYPES, TRUE, find


@dataclass
class OperatorMetrics:
    """One registry per operator instance (tests run several in one process)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.reconcile_seconds = Histogram(
            "tierwise_operator_reconcile_duration_seconds",
            "Time to apply one InferenceModel's share of a fleet round.",
            ["trigger"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )  # fmt: skip
        self.plan_changes = Counter(
            "tierwise_operator_plan_changes_total",
            "Plans applied, by why they changed.", ["reason"], registry=r,
        )  # fmt: skip
        self.writes_skipped = Counter(
            "tierwise_operator_writes_skipped_total",
            "Applies and status patches left out because they would change nothing.",
            ["kind"], registry=r,
        )  # fmt: skip
        self.models = Gauge(
            "tierwise_operator_models",
            "InferenceModels by planned tier class and precision.",
            ["tier_class", "precision"], registry=r,
        )  # fmt: skip
        self.cost_per_hour = Gauge(
            "tierwise_operator_planned_cost_per_hour",
            "Planned cost per hour of a model's replicas (TierClass currency).",
            ["namespace", "name"], registry=r,
        )  # fmt: skip
        self.condition = Gauge(
            "tierwise_model_condition",
            "1 when the model's condition is True, else 0.",
            ["namespace", "name", "type"], registry=r,
        )  # fmt: skip
        self.feasible = Gauge(
            "tierwise_model_plan_feasible",
            "1 when some plan meets the model's budgets, else 0.",
            ["namespace", "name"], registry=r,
        )  # fmt: skip
        self.round_seconds = Histogram(
            "tierwise_operator_round_duration_seconds",
            "Time of one fleet round: read every model, plan them together, apply.",
            ["trigger"], registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )  # fmt: skip
        self.rounds = Counter(
            "tierwise_operator_rounds_total",
            "Fleet rounds, by the solver that decided them.", ["solver"], registry=r,
        )  # fmt: skip
        self._placements: dict[tuple[str, str], tuple[str, str]] = {}
        self._placed: dict[tuple[str, str], int] = {}

    def observe_round(self, trigger: str, solver: str, seconds: float) -> None:
        self.round_seconds.labels(trigger).observe(seconds)
        self.rounds.labels(solver).inc()

    def observe_status(
        self, namespace: str, name: str, status: InferenceModelStatus, feasible: bool
    ) -> None:
        """Refresh every per-model series from the status just written."""
        key = (namespace, name)
        for type_ in ALL_TYPES:
            cond = find(status.conditions, type_)
            if cond is not None:
                self.condition.labels(namespace, name, type_).set(1 if cond.status == TRUE else 0)
        self.feasible.labels(namespace, name).set(1 if feasible else 0)
        if status.cost is not None:
            self.cost_per_hour.labels(namespace, name).set(float(status.cost.per_hour))
        if status.tier_class and status.precision:
            self._place(key, (status.tier_class, str(status.precision)))

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted model's series."""
        self._place((namespace, name), None)
        for type_ in ALL_TYPES:
            self._remove(self.condition, namespace, name, type_)
        self._remove(self.feasible, namespace, name)
        self._remove(self.cost_per_hour, namespace, name)

    @staticmethod
    def _remove(gauge: Gauge, *labels: str) -> None:
        try:
            gauge.remove(*labels)
        except KeyError:
            return  # never set for this model

    def _place(self, key: tuple[str, str], placement: tuple[str, str] | None) -> None:
        """Move one model's count between placements (None: gone).

        Only the two series it leaves and joins change: recounting every model on each
        reconcile made a re-plan round quadratic in the number of models.
        """
        old = self._placements.pop(key, None)
        if placement is not None:
            self._placements[key] = placement
        if old == placement:
            return
        if old is not None:
            left = self._placed.pop(old) - 1
            if left:
                self._placed[old] = left
                self.models.labels(*old).set(left)
            else:
                self.models.remove(*old)
        if placement is not None:
            self._placed[placement] = self._placed.get(placement, 0) + 1
            self.models.labels(*placement).set(self._placed[placement])

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def health_app(metrics: OperatorMetrics, is_ready: object) -> web.Application:
    """/healthz answers 200 once the operator watches its resources, /metrics always."""

    async def healthz(_: web.Request) -> web.Response:
        ready = bool(is_ready() if callable(is_ready) else is_ready)
        return web.Response(status=200 if ready else 503, text="ok" if ready else "starting")

    async def metrics_handler(_: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler)
    return app
