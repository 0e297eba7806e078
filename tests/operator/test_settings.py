"""Operator settings come from TIERWISE_* variables; a bad value names the variable."""

from __future__ import annotations

import pytest

from tierwise_operator.settings import Settings, SettingsError


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings.namespaces == ()
    assert float(settings.replan_interval) == 30.0
    assert float(settings.savings_margin) == pytest.approx(0.10)
    assert "DCGM_FI_DEV_FB_FREE" in settings.promql.gpu_free


def test_values_are_read_and_typed() -> None:
    settings = Settings.from_env({
        "TIERWISE_NAMESPACES": "support, search,",
        "TIERWISE_REPLAN_INTERVAL": "1m",
        "TIERWISE_SAVINGS_MARGIN": "5%",
        "TIERWISE_RUNTIME_PORT": "9000",
        "TIERWISE_PROMQL_HOST_AVAILABLE": "node_memory_MemFree_bytes",
    })  # fmt: skip
    assert settings.namespaces == ("support", "search")
    assert float(settings.replan_interval) == 60.0
    assert float(settings.savings_margin) == pytest.approx(0.05)
    assert settings.runtime_port == 9000
    assert settings.promql.host_available == "node_memory_MemFree_bytes"


@pytest.mark.parametrize(
    ("var", "value"),
    [("TIERWISE_REPLAN_INTERVAL", "soon"), ("TIERWISE_RUNTIME_PORT", "http"),
     ("TIERWISE_SAVINGS_MARGIN", "lots")],
)  # fmt: skip
def test_a_bad_value_names_its_variable(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match=var):
        Settings.from_env({var: value})
