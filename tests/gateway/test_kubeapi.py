"""The gateway's Kubernetes credentials: from a kubeconfig, or none for the emulator."""

from __future__ import annotations

from pathlib import Path

from tierwise_operator.gateway.kubeapi import ApiConfig

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
- cluster: {server: "https://127.0.0.1:6443/", insecure-skip-tls-verify: true}
  name: c
users:
- name: u
  user: {token: sk-abc123}
contexts:
- context: {cluster: c, user: u}
  name: x
current-context: x
"""


def test_a_kubeconfig_token_is_sent_as_a_bearer_header(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    config = ApiConfig.load(kubeconfig=str(path))
    assert config.server == "https://127.0.0.1:6443"
    assert config.headers() == {"Authorization": "Bearer sk-abc123"}
    assert config.ssl_context is False  # insecure-skip-tls-verify


def test_a_server_url_alone_talks_without_credentials() -> None:
    config = ApiConfig.load(server="http://127.0.0.1:1234/")
    assert (config.server, config.headers()) == ("http://127.0.0.1:1234", {})
