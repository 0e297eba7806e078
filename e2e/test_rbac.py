"""The operator's ServiceAccount may do its job and nothing more: no Secrets, no wildcards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .install import OPERATOR_ACCOUNT, install_rbac
from .kubectl import Kubectl

ACCESS_REVIEW_APIS = {"authorization.k8s.io/v1", "rbac.authorization.k8s.io/v1"}


@pytest.fixture(scope="module", autouse=True)
def operator_rbac(request: pytest.FixtureRequest, cluster: Kubectl) -> Iterator[None]:
    """deploy/base's ServiceAccount, ClusterRole and binding (installed with the operator
    in-cluster; applied for these tests when the operator runs locally)."""
    missing = ACCESS_REVIEW_APIS - cluster.api_versions()
    if missing:
        pytest.skip(
            f"the API server cannot answer access reviews (it serves no "
            f"{', '.join(sorted(missing))})"
        )
    if request.config.getoption("--in-cluster"):
        request.getfixturevalue("operator")
        yield
        return
    installed = install_rbac(cluster)
    try:
        yield
    finally:
        installed.remove()


@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("get", "secrets"),
        ("list", "secrets"),
        ("watch", "secrets"),
        ("list", "configmaps"),  # eval sets are read by name only
        ("create", "pods"),
        ("delete", "inferencemodels.tierwise.dev"),
        ("update", "tierclasses.tierwise.dev"),
        ("*", "*"),
    ],
)
def test_operator_account_cannot(cluster: Kubectl, verb: str, resource: str) -> None:
    assert not cluster.can_i(verb, resource, OPERATOR_ACCOUNT, "--all-namespaces")


@pytest.mark.parametrize(
    ("verb", "resource", "subresource"),
    [
        ("patch", "inferencemodels.tierwise.dev", "status"),
        ("watch", "inferencemodels.tierwise.dev", None),
        ("list", "tierclasses.tierwise.dev", None),
        ("create", "deployments.apps", None),
        ("patch", "deployments.apps", None),
        ("create", "services", None),
        ("create", "poddisruptionbudgets.policy", None),
        ("create", "jobs.batch", None),
        ("list", "pods", None),
        ("list", "nodes", None),
        ("get", "configmaps", None),
        ("create", "events", None),
    ],
)
def test_operator_account_can(
    k: Kubectl, verb: str, resource: str, subresource: str | None
) -> None:
    extra = [f"--subresource={subresource}"] if subresource else []
    assert k.can_i(verb, resource, OPERATOR_ACCOUNT, *extra)
