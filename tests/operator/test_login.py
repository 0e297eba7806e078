"""`tierwise run` logs in as kubectl would; tests and local mode log in to their own server."""

from __future__ import annotations

import logging
from pathlib import Path

import kopf
import pytest
from kubernetes import client as k8s
from kubernetes.config import kube_config

from tierwise_operator.emulator import write_kubeconfig
from tierwise_operator.runner import registry_for
from tierwise_operator.settings import Settings

URL = "http://127.0.0.1:6443"


def _logins(registry: kopf.OperatorRegistry) -> list[kopf.ConnectionInfo | None]:
    handlers = [h for h in registry._activities.get_all_handlers()
                if h.activity is not None and h.activity.name == "AUTHENTICATION"]  # fmt: skip
    settings = kopf.OperatorSettings()
    return [h.fn(logger=logging.getLogger(__name__), settings=settings) for h in handlers]


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig for URL, found where the kubernetes client looks; no in-cluster account."""
    path = write_kubeconfig(URL, tmp_path / "kubeconfig")
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(k8s.Configuration, "_default", None)  # load_kube_config sets it
    return path


def test_run_logs_in_with_the_kubeconfig_when_no_server_is_given(kubeconfig: Path) -> None:
    [info] = _logins(registry_for(Settings()))
    assert info is not None
    assert info.server == URL


def test_a_given_server_is_logged_in_to_directly(kubeconfig: Path) -> None:
    [info] = _logins(registry_for(Settings(), server="http://127.0.0.1:7000"))
    assert info is not None
    assert info.server == "http://127.0.0.1:7000"


def test_login_false_leaves_logging_in_to_the_caller() -> None:
    assert _logins(registry_for(Settings(), server=URL, login=False)) == []
