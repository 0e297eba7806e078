"""The operator's configuration: one object read from TIERWISE_* environment variables."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .api import Duration, Percentage

ENV_PREFIX = "TIERWISE_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class PromQL:
    """PromQL templates; `{namespace}` and `{name}` are filled per model, `{window}` per query."""

    #: Free device memory per GPU, DCGM exporter (bytes; DCGM reports MiB).
    gpu_free: str = "DCGM_FI_DEV_FB_FREE * 1024 * 1024"
    #: Used device memory per GPU, DCGM exporter.
    gpu_used: str = "DCGM_FI_DEV_FB_USED * 1024 * 1024"
    #: Available host memory per node, node_exporter.
    host_available: str = "node_memory_MemAvailable_bytes"
    #: A model's request rate (requests/s): counted where it arrives, at the gateway (so
    #: demand shows at zero replicas), else from the runtimes' own counter.
    request_rate: str = (
        'sum(rate(tierwise_gateway_requests_total{{model_namespace="{namespace}",'
        'model_name="{name}"}}[{window}])) or '
        'sum(rate(tierwise_runtime_requests_total{{namespace="{namespace}",'
        'tierwise_dev_model="{name}"}}[{window}]))'
    )
    #: A model's p99 latency (s) from the runtime's histogram.
    latency_p99: str = (
        "histogram_quantile(0.99, sum by (le) (rate("
        'tierwise_runtime_request_duration_seconds_bucket{{namespace="{namespace}",'
        'tierwise_dev_model="{name}"}}[{window}])))'
    )


@dataclass(frozen=True)
class Settings:
    """Everything the operator can be told; each field maps to TIERWISE_<FIELD_NAME>."""

    #: Container image of the runtime (serve and profile).
    runtime_image: str = "ghcr.io/tierwise/runtime:0.1.0"
    #: Image of the runtime for GPU tiers (the CUDA build).
    runtime_image_cuda: str = "ghcr.io/tierwise/runtime-cuda:0.1.0"
    #: Namespaces to watch, comma-separated; empty means all namespaces.
    namespaces: tuple[str, ...] = ()
    #: Prometheus base URL; empty disables Prometheus (capacity from the Kubernetes API).
    prometheus_url: str = ""
    #: How often live metrics are collected and every model re-planned.
    replan_interval: Duration = field(default_factory=lambda: Duration.parse("30s"))
    #: How long a fleet round waits after a change (a create, an edit, a child's status)
    #: before it plans: changes arriving meanwhile are planned in the same round.
    plan_debounce: Duration = field(default_factory=lambda: Duration.parse("300ms"))
    #: Rate window for traffic queries.
    metrics_window: Duration = field(default_factory=lambda: Duration.parse("5m"))
    #: A new plan must save more than this to replace a working one.
    savings_margin: Percentage = field(default_factory=lambda: Percentage.parse("10%"))
    #: Least time between two changes of a model's candidate (variant, precision or tier);
    #: a candidate that breaks a constraint is left at once.
    tier_dwell: Duration = field(default_factory=lambda: Duration.parse("15m"))
    #: How long lower traffic must persist before replicas scale down (like the HPA's).
    scale_down_stabilization: Duration = field(default_factory=lambda: Duration.parse("5m"))
    #: How long a candidate whose pods failed (OOMKilled, crash loop) stays excluded.
    failed_candidate_backoff: Duration = field(default_factory=lambda: Duration.parse("1h"))
    #: Deadline of a profile Job before it is reported failed.
    profile_timeout: Duration = field(default_factory=lambda: Duration.parse("30m"))
    #: Extra arguments for `tierwise-runtime profile` in profile Jobs, space-separated
    #: (e.g. "--repeats 20 --eval-limit 64" to trade precision of the figures for time).
    profile_args: tuple[str, ...] = ()
    #: Mount root of pvc:// model volumes inside runtime pods.
    model_mount_root: str = "/models"
    #: Field manager name for server-side apply.
    field_manager: str = "tierwise"
    #: Port the runtime serves on inside its pod.
    runtime_port: int = 8000
    #: Node folders `file://` model sources may mount (hostPath), comma-separated absolute
    #: paths; empty refuses every `file://` source (InvalidSpec).
    host_path_prefixes: tuple[str, ...] = ()
    #: CA bundle (PEM file) that Prometheus' TLS certificate is verified against; empty
    #: uses the system's. Verification is never turned off.
    prometheus_ca_file: str = ""
    #: File with a bearer token for Prometheus (a mounted Secret key), re-read every round.
    prometheus_token_file: str = ""
    #: Folder with `username` and `password` files for Prometheus basic auth (a mounted
    #: `kubernetes.io/basic-auth` Secret), re-read every round.
    prometheus_basic_auth_dir: str = ""
    #: Secret, in each model's namespace, whose `api-key` the runtime requires from callers
    #: (mounted into runtime pods, passed as `--api-key-file`); empty: no key.
    runtime_api_key_secret: str = ""
    #: PromQL templates.
    promql: PromQL = field(default_factory=PromQL)

    def __post_init__(self) -> None:
        for prefix in self.host_path_prefixes:
            if not prefix.startswith("/") or posixpath.normpath(prefix) != prefix:
                raise SettingsError(
                    f"{ENV_PREFIX}HOST_PATH_PREFIXES: {prefix!r} is not a normalised absolute path"
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read TIERWISE_* variables; an unusable value raises SettingsError naming it."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "promql":
                values["promql"] = _promql_from_env(env)
                continue
            var = ENV_PREFIX + f.name.upper()
            if var in env:
                values[f.name] = _convert(var, env[var], f.type)
        return cls(**values)


def _promql_from_env(env: Mapping[str, str]) -> PromQL:
    overrides = {
        f.name: env[var]
        for f in fields(PromQL)
        if (var := f"{ENV_PREFIX}PROMQL_{f.name.upper()}") in env
    }
    return PromQL(**overrides)


def _convert(var: str, raw: str, type_name: Any) -> Any:
    kind = str(type_name)
    try:
        if kind == "Duration":
            return Duration.parse(raw)
        if kind == "Percentage":
            return Percentage.parse(raw)
        if kind == "int":
            return int(raw)
        if kind.startswith("tuple"):
            separator = None if var.endswith("_ARGS") else ","
            return tuple(part.strip() for part in raw.split(separator) if part.strip())
    except ValueError as exc:
        raise SettingsError(f"{var}: {exc}") from exc
    return raw
