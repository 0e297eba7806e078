"""Fixtures of the e2e suite: the cluster in KUBECONFIG, a fresh namespace, a labelled node
with its TierClass, the CRDs and the operator (a local process, or in-cluster with --in-cluster).

With no reachable cluster every test skips from one place, so the summary is one line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tierwise_operator.settings import Settings

from .install import (
    OPERATOR_NAME,
    OPERATOR_NAMESPACE,
    NodeLabel,
    Ref,
    delete_models,
    install_crds,
    install_operator,
    release_finalizers,
    remove_crds_if_unused,
    schedulable_node,
)
from .kubectl import Kubectl
from .manifests import PART_OF, TIER_LABEL, tier_class
from .operators import TEST_SETTINGS, InClusterOperator, LocalOperator, Operator

Manifest = dict[str, Any]
NO_CLUSTER = "e2e: no reachable cluster"
NOTES = pytest.StashKey[list[str]]()
"""What the run did to the cluster beyond its own objects, for the terminal summary."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tierwise e2e")
    group.addoption(
        "--in-cluster",
        action="store_true",
        help="install the operator from deploy/default instead of running it locally",
    )
    group.addoption(
        "--operator-image", help="operator image for --in-cluster (default: deploy/base's)"
    )
    group.addoption(
        "--runtime-image",
        help="runtime image the cluster can run (default: the operator's default image, used "
        "only when a node already has it); enables the Ready test",
    )


def unreachable_reason() -> str | None:
    """Why there is no cluster to test against, or None when its API answers."""
    if shutil.which("kubectl") is None:
        return "kubectl is not on PATH"
    if not os.environ.get("KUBECONFIG"):
        return "KUBECONFIG unset"
    try:
        probe = Kubectl(timeout=20)
        result = probe.run("get", "--raw", "/version", "--request-timeout=10s", check=False)
    except subprocess.TimeoutExpired:
        return "API unreachable: kubectl timed out"
    if result.code != 0:
        first = (result.err.strip().splitlines() or ["no answer"])[-1]
        return f"API unreachable: {first}"
    return None


@pytest.fixture(scope="session", autouse=True)
def cluster() -> Kubectl:
    """kubectl for the cluster in KUBECONFIG; skips the whole suite when there is none."""
    reason = unreachable_reason()
    if reason is not None:
        pytest.skip(f"{NO_CLUSTER} ({reason}): skipped")
    return Kubectl()


@pytest.fixture(scope="session")
def run_id() -> str:
    """Names this run's namespace, TierClass and node label, so runs never collide."""
    return secrets.token_hex(3)


@pytest.fixture(scope="session")
def crds(request: pytest.FixtureRequest, cluster: Kubectl) -> Iterator[bool]:
    """This checkout's CRDs, applied and Established; True when this run created them."""
    created = install_crds(cluster)
    yield created
    if created:
        request.config.stash.setdefault(NOTES, []).append(remove_crds_if_unused(cluster))


@pytest.fixture(scope="session")
def namespace(cluster: Kubectl, crds: bool, run_id: str) -> Iterator[str]:
    name = f"tierwise-e2e-{run_id}"
    meta = {"name": name, "labels": dict(PART_OF)}
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
    yield name
    release_finalizers(cluster.in_namespace(name))
    cluster.delete("namespace", name)


@pytest.fixture(scope="session")
def node(cluster: Kubectl) -> Manifest:
    return schedulable_node(cluster)


@pytest.fixture(scope="session")
def tier(cluster: Kubectl, crds: bool, node: Manifest, run_id: str) -> Iterator[str]:
    """A TierClass (the sample cpu-large) selecting one node this run labels."""
    label = NodeLabel(cluster, node["metadata"]["name"], TIER_LABEL, run_id)
    label.set()
    name = f"e2e-{run_id}-cpu-large"
    try:
        cluster.apply(tier_class(name, run_id, node))
        yield name
    finally:
        cluster.delete("tierclass", name)
        label.restore()


@pytest.fixture(scope="session")
def runtime_image(request: pytest.FixtureRequest, cluster: Kubectl) -> str | None:
    """The runtime image pods can start from: --runtime-image, or the default when a node has it."""
    given: str | None = request.config.getoption("--runtime-image")
    if given:
        return given
    default = Settings().runtime_image
    names = {
        n
        for node in cluster.items("nodes")
        for image in (node.get("status") or {}).get("images") or []
        for n in image.get("names") or []
    }
    aliases = {default, f"docker.io/{default}", f"docker.io/library/{default}"}
    return default if names & aliases else None


@pytest.fixture(scope="session")
def operator(
    *,
    request: pytest.FixtureRequest,
    cluster: Kubectl,
    namespace: str,
    tier: str,
    runtime_image: str | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    env = {**TEST_SETTINGS, "TIERWISE_RUNTIME_IMAGE": runtime_image or Settings().runtime_image}
    if request.config.getoption("--in-cluster"):
        installed = install_operator(cluster, request.config.getoption("--operator-image"), env)
        with _removing_models_first(cluster.in_namespace(namespace), installed.remove):
            yield InClusterOperator(cluster)
        return
    if Ref("deployment.apps", OPERATOR_NAME, OPERATOR_NAMESPACE).exists(cluster):
        where = f"{OPERATOR_NAMESPACE}/{OPERATOR_NAME}"
        pytest.fail(
            f"an in-cluster operator ({where}) would race the local one: "
            "run with --in-cluster, or remove it"
        )
    local = LocalOperator(namespace, env, tmp_path_factory.mktemp("operator") / "operator.log")
    local.start()
    with _removing_models_first(cluster.in_namespace(namespace), local.stop):
        yield local


@contextlib.contextmanager
def _removing_models_first(k: Kubectl, stop: Callable[[], None]) -> Iterator[None]:
    """Stop the operator only after the run's models are gone (it removes their finalizers)."""
    try:
        yield
    finally:
        try:
            delete_models(k)
        finally:
            stop()


@pytest.fixture
def k(cluster: Kubectl, namespace: str) -> Kubectl:
    """kubectl in this run's namespace."""
    return cluster.in_namespace(namespace)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test shows the operator's last log lines next to its assertion; without a
    cluster, every skip points here, so the summary folds them into one line."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and NO_CLUSTER in str(longrepr[2]):
        report.longrepr = (__file__, None, longrepr[2])
    running = getattr(item, "funcargs", {}).get("operator")
    if report.failed and call.when == "call" and running is not None:
        report.sections.append(("operator log (last lines)", running.logs()))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for note in config.stash.get(NOTES, []):
        terminalreporter.write_line(f"e2e: {note}")
