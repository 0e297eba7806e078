"""A measured profile travels through a 4096-byte termination message and back."""

from __future__ import annotations

import pytest

from tierwise_operator.api import (
    AccuracyMeasure,
    Architecture,
    CandidateProfile,
    LatencyPoint,
    MachineInfo,
    ModelProfile,
    Precision,
    ProfiledModel,
    Task,
    TierKind,
)
from tierwise_operator.api.profile_codec import LIMIT, ProfileTooLarge, decode, encode


def make_profile(variants: int, batches: tuple[int, ...] = (1, 8, 32)) -> ModelProfile:
    candidates = [
        CandidateProfile(
            variant="primary" if v == 0 else f"student-{v}",
            precision=precision,
            tier=tier,
            weight_bytes=123_456_789 // (v + 1),
            load_seconds=1.234567,
            peak_memory_bytes=987_654_321,
            kv_cache_bytes_per_token=36864,
            latency=[
                LatencyPoint(
                    batch=b, p50_ms=3.14159 * b, p99_ms=4.2 * b, throughput=1000 / b, samples=200
                )
                for b in batches
            ],
            accuracy=AccuracyMeasure(delta=0.0123456, perplexity=12.3456, top1_agreement=0.97654),
        )
        for v in range(variants)
        for precision in Precision
        for tier in TierKind
    ]
    return ModelProfile(
        model=ProfiledModel(
            uri="builtin://smollm2-135m",
            digest="ab" * 32,
            task=Task.TEXT_GENERATION,
            architecture=Architecture.LLAMA,
            parameters=134_515_008,
            max_tokens=8192,
        ),
        machine=MachineInfo(cpu="Intel(R) Xeon(R) Platinum 8488C", threads=2, torch="2.13.0"),
        created_at="2026-11-26T10:00:00Z",
        candidates=candidates,
    )


def test_a_typical_profile_round_trips_within_the_limit() -> None:
    profile = make_profile(variants=1)
    text = encode(profile)
    assert len(text.encode()) <= LIMIT
    back = decode(text)
    assert len(back.candidates) == len(profile.candidates)
    first, again = profile.candidates[0], back.candidates[0]
    assert again.weight_bytes == first.weight_bytes
    assert again.accuracy is not None and first.accuracy is not None
    assert again.accuracy.delta == pytest.approx(first.accuracy.delta, rel=1e-4)
    assert [p.batch for p in again.latency] == [1, 8, 32]


def test_a_large_profile_drops_detail_before_failing() -> None:
    profile = make_profile(variants=4, batches=(1, 2, 4, 8, 16, 32, 64))
    text = encode(profile)
    assert len(text.encode()) <= LIMIT
    back = decode(text)
    assert len(back.candidates) == len(profile.candidates)
    # Every candidate keeps its smallest and largest batch measurements.
    assert {p.batch for p in back.candidates[0].latency} >= {1, 64}


def test_a_profile_too_large_for_any_form_is_refused_with_a_reason() -> None:
    with pytest.raises(ProfileTooLarge, match="profile fewer candidates"):
        encode(make_profile(variants=4), limit=300)


@pytest.mark.parametrize("text", ["", "{}", "tw1:not base64!", "tw1:" + "QUJD"])
def test_garbage_is_rejected_clearly(text: str) -> None:
    with pytest.raises(ValueError, match="profile"):
        decode(text)
