"""Prometheus is reached over verified TLS with credentials from files; none ever shows up.

A small HTTPS Prometheus on 127.0.0.1 with a certificate from a private CA
(openssl): it answers /api/v1/query only to the credentials it expects.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tierwise_operator.local.prometheus_server import free_port
from tierwise_operator.metrics.prometheus import PrometheusSource
from tierwise_operator.metrics.prometheus_auth import PrometheusAuth, redact_url
from tierwise_operator.runner import prometheus_auth
from tierwise_operator.settings import PromQL, Settings

NOW = datetime(2026, 12, 4, tzinfo=UTC)
MODEL = ("support", "ticket-embedder")
SAMPLE = {"metric": {"node": "cpu-1"}, "value": [0, "1000000"]}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl not found: `make check` installs it (scripts/system-deps.sh)"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


class SecurePrometheus:
    """Answers queries over TLS when the Authorization header is `expected` (any when None)."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.expected: str | None = None
        self.seen: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                given = self.headers.get("Authorization")
                server.seen.append(given)
                ok = server.expected is None or given == server.expected
                query = self.path.split("query=", 1)[-1]
                result = [SAMPLE] if ok and "MemAvailable" in query else []
                body = json.dumps({"status": "success", "data": {"result": result}}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", str(len(body) if ok else 12))
                self.end_headers()
                self.wfile.write(body if ok else b"unauthorized")

            def log_message(self, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, userinfo: str = "") -> str:
        return f"https://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def prometheus(certificate: tuple[Path, Path]) -> Iterator[SecurePrometheus]:
    server = SecurePrometheus(*certificate)
    yield server
    server.close()


def _collect(url: str, auth: PrometheusAuth | None = None) -> tuple[bool, str]:
    obs = PrometheusSource(url, PromQL(), timeout=2, auth=auth).collect([MODEL], NOW)
    return obs.available, obs.message


def test_tls_is_verified_by_default(prometheus: SecurePrometheus) -> None:
    available, message = _collect(prometheus.url())
    assert not available and "SSLError" in message


def test_a_ca_bundle_makes_a_private_certificate_trusted(
    prometheus: SecurePrometheus, certificate: tuple[Path, Path]
) -> None:
    available, message = _collect(prometheus.url(), PrometheusAuth(ca_file=str(certificate[0])))
    assert available, message


def test_a_bearer_token_comes_from_its_file_and_a_rotation_takes_effect(
    prometheus: SecurePrometheus, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("first-token\n")
    source = PrometheusSource(
        prometheus.url(), PromQL(), timeout=2,
        auth=PrometheusAuth(ca_file=str(certificate[0]), token_file=str(token)),
    )  # fmt: skip
    prometheus.expected = "Bearer first-token"
    assert source.collect([MODEL], NOW).available
    token.write_text("second-token")
    prometheus.expected = "Bearer second-token"
    assert source.collect([MODEL], NOW).available
    prometheus.expected = "Bearer third-token"
    refused = source.collect([MODEL], NOW)
    assert not refused.available and "second-token" not in refused.message


def test_basic_auth_comes_from_a_mounted_secret_folder(
    prometheus: SecurePrometheus, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    (tmp_path / "username").write_text("tierwise")
    (tmp_path / "password").write_text("hunter2")
    prometheus.expected = "Basic " + base64.b64encode(b"tierwise:hunter2").decode()
    auth = PrometheusAuth(ca_file=str(certificate[0]), basic_auth_dir=str(tmp_path))
    available, message = _collect(prometheus.url(), auth)
    assert available, message


def test_a_missing_credentials_file_is_reported_not_raised(
    prometheus: SecurePrometheus, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    missing = tmp_path / "nothing-here"
    auth = PrometheusAuth(ca_file=str(certificate[0]), token_file=str(missing))
    available, message = _collect(prometheus.url(), auth)
    assert not available and str(missing) in message


@pytest.mark.parametrize("reachable", [True, False])
def test_credentials_in_the_url_never_reach_a_message(
    prometheus: SecurePrometheus, certificate: tuple[Path, Path], reachable: bool
) -> None:
    port = prometheus.port if reachable else free_port()
    url = f"https://alice:s3cr%40t-pw@127.0.0.1:{port}"
    prometheus.expected = "Bearer something-else"  # reachable, but refuses alice
    source = PrometheusSource(url, PromQL(), timeout=2,
                              auth=PrometheusAuth(ca_file=str(certificate[0])))  # fmt: skip
    obs = source.collect([MODEL], NOW)
    assert not obs.available
    for text in (obs.message, source.url, repr(obs)):
        assert "s3cr" not in text and "alice" not in text
    assert source.url == f"https://***@127.0.0.1:{port}"
    if reachable:  # the URL's credentials were still sent
        assert prometheus.seen[-1] == "Basic " + base64.b64encode(b"alice:s3cr@t-pw").decode()


@pytest.mark.parametrize(
    ("url", "shown"),
    [("http://prom:9090", "http://prom:9090"),
     ("https://u:p@prom.monitoring.svc:9090/x?y=1", "https://***@prom.monitoring.svc:9090/x?y=1"),
     ("https://token@prom", "https://***@prom")],
)  # fmt: skip
def test_urls_are_shown_without_their_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_operator_settings_name_the_trust_and_credential_files() -> None:
    settings = Settings.from_env({
        "TIERWISE_PROMETHEUS_CA_FILE": "/etc/tierwise/prometheus/ca.crt",
        "TIERWISE_PROMETHEUS_TOKEN_FILE": "/var/run/secrets/prometheus/token",
        "TIERWISE_PROMETHEUS_BASIC_AUTH_DIR": "/var/run/secrets/prometheus-basic",
    })  # fmt: skip
    assert prometheus_auth(settings) == PrometheusAuth(
        ca_file="/etc/tierwise/prometheus/ca.crt",
        token_file="/var/run/secrets/prometheus/token",
        basic_auth_dir="/var/run/secrets/prometheus-basic",
    )
    assert PrometheusAuth().verify is True
