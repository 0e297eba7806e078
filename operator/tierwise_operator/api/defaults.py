"""Every default of the tierwise.dev API, in one place, so docs, CRDs and code agree."""

from __future__ import annotations

from .enums import Precision
from .quantities import Percentage

GROUP = "tierwise.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: spec.precisions when unset: every precision the runtime supports.
PRECISIONS: tuple[Precision, ...] = tuple(Precision)
#: spec.tierClasses when unset: every TierClass in the cluster (an empty list means that too).
TIER_CLASSES: tuple[str, ...] = ()
#: spec.replicas when unset: exactly one replica.
REPLICAS_MIN = 1
REPLICAS_MAX = 1
#: spec.accuracyBudget.evalSet when unset: the evaluation texts bundled with the runtime.
EVAL_SET_BUILTIN = "builtin://default"
#: spec.traffic.headroom: capacity kept above the observed traffic.
HEADROOM = Percentage.parse("20%")
#: spec.priority: who keeps scarce GPU memory first (higher wins).
PRIORITY = 0
#: TierClass spec.devicesPerNode for gpu tiers.
DEVICES_PER_NODE = 1
#: spec.model.contextLength for decoders: tokens of KV cache reserved per sequence.
CONTEXT_LENGTH = 2048
