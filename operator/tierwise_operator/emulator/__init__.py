"""An in-process Kubernetes API emulator for tests and local mode (built on kmock 0.8).

See docs/emulator.md for the semantics it covers and those it does not.
"""

from .client import Client, ClientError, kubeconfig, write_kubeconfig
from .controllers.nodes import NodeSpec
from .harness import Cluster, load_manifests
from .kubelet import Exit, FakeKubelet, Hang, Kubelet, OOMKill, PodHandle, Serve
from .registry import Registry, ResourceType

__all__ = [
    "Client",
    "ClientError",
    "Cluster",
    "Exit",
    "FakeKubelet",
    "Hang",
    "Kubelet",
    "NodeSpec",
    "OOMKill",
    "PodHandle",
    "Registry",
    "ResourceType",
    "Serve",
    "kubeconfig",
    "load_manifests",
    "write_kubeconfig",
]
