"""The operator exports per-model series the alerts use, and forgets deleted models."""

from __future__ import annotations

from decimal import Decimal

from aiohttp.test_utils import TestClient, TestServer

from tierwise_operator import conditions as cond
from tierwise_operator.api import CostStatus, InferenceModelStatus, Precision, Price
from tierwise_operator.observability import OperatorMetrics, health_app

from .test_conditions import T0


def _status(slo_met: bool) -> InferenceModelStatus:
    conditions = cond.set_condition([], cond.SLO_MET, status=slo_met, reason="Measured",
                                    message="", generation=1, now=T0)  # fmt: skip
    return InferenceModelStatus(
        tier_class="cpu-large", precision=Precision.INT8, conditions=conditions,
        cost=CostStatus(per_hour=Price(Decimal("1.62")), per1k_inferences=Price("0.01")),
    )  # fmt: skip


def _sample(metrics: OperatorMetrics, name: str, labels: dict[str, str]) -> float | None:
    value = metrics.registry.get_sample_value(name, labels)
    return value


def test_status_becomes_condition_cost_and_placement_series() -> None:
    metrics = OperatorMetrics()
    metrics.observe_status("support", "embedder", _status(slo_met=False), feasible=True)
    labels = {"namespace": "support", "name": "embedder"}
    assert _sample(metrics, "tierwise_model_condition", {**labels, "type": "SLOMet"}) == 0
    assert _sample(metrics, "tierwise_model_plan_feasible", labels) == 1
    assert _sample(metrics, "tierwise_operator_planned_cost_per_hour", labels) == 1.62
    placement = {"tier_class": "cpu-large", "precision": "int8"}
    assert _sample(metrics, "tierwise_operator_models", placement) == 1


def test_forgetting_a_model_removes_its_series() -> None:
    metrics = OperatorMetrics()
    metrics.observe_status("support", "embedder", _status(slo_met=True), feasible=True)
    metrics.forget("support", "embedder")
    labels = {"namespace": "support", "name": "embedder"}
    assert _sample(metrics, "tierwise_model_plan_feasible", labels) is None
    placement = {"tier_class": "cpu-large", "precision": "int8"}
    assert _sample(metrics, "tierwise_operator_models", placement) is None


async def test_health_is_503_until_ready_and_metrics_are_served() -> None:
    ready = {"value": False}
    app = health_app(OperatorMetrics(), lambda: ready["value"])
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/healthz")).status == 503
        ready["value"] = True
        assert (await client.get("/healthz")).status == 200
        body = await (await client.get("/metrics")).text()
        assert "tierwise_operator_reconcile_duration_seconds" in body


def test_models_by_placement_follow_moves_and_count_each_model_once() -> None:
    metrics = OperatorMetrics()
    cpu = {"tier_class": "cpu-large", "precision": "int8"}
    gpu = {"tier_class": "gpu-h100", "precision": "fp16"}
    on_gpu = _status(slo_met=True).model_copy(
        update={"tier_class": "gpu-h100", "precision": Precision.FP16}
    )
    for name in ("a", "b", "a"):  # "a" reconciled twice on the same placement
        metrics.observe_status("support", name, _status(slo_met=True), feasible=True)
    assert _sample(metrics, "tierwise_operator_models", cpu) == 2
    metrics.observe_status("support", "a", on_gpu, feasible=True)
    assert _sample(metrics, "tierwise_operator_models", cpu) == 1
    assert _sample(metrics, "tierwise_operator_models", gpu) == 1
    metrics.observe_status("support", "b", on_gpu, feasible=True)
    assert _sample(metrics, "tierwise_operator_models", cpu) is None
    assert _sample(metrics, "tierwise_operator_models", gpu) == 2
