"""Continuous batching in the decoder: prompts join a running batch between steps and leave
when they end, and what each sequence generates never depends on who shares its batch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tierwise_runtime.engine import Engine, SamplingParams
from tierwise_runtime.engines import DecoderEngine
from tierwise_runtime.engines.generation import DecodeSession, Row
from tierwise_runtime.loader import load_engine

GREEDY = SamplingParams(max_tokens=12, temperature=0)


@pytest.fixture(scope="module")
def llama(small_llama: Path) -> DecoderEngine:
    engine = load_engine(f"file://{small_llama}", "fp32")
    assert isinstance(engine, DecoderEngine)
    return engine


def alone(engine: DecoderEngine, prompt: list[int], params: SamplingParams) -> list[int]:
    """What `prompt` generates in a batch of its own."""
    return [s[0] for s in engine.generate([prompt], [params]) if s[0] is not None]


def run(session: DecodeSession, steps: int | None = None) -> dict[int, list[int]]:
    """Advance `steps` times (or until every row has left): tokens by row id."""
    made: dict[int, list[int]] = {}
    done = 0
    while session.rows and (steps is None or done < steps):
        for row, token in session.advance():
            made.setdefault(id(row), []).append(token)
        done += 1
    return made


def test_a_prompt_that_joins_midway_generates_what_it_would_alone(llama: DecoderEngine) -> None:
    first, late = [5, 17, 29, 41], [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 300]
    session = llama.session()
    (a,) = session.join([first], [GREEDY])
    made = run(session, steps=4)
    (b,) = session.join([late], [SamplingParams(max_tokens=9, temperature=0)])
    for key, tokens in run(session).items():
        made.setdefault(key, []).extend(tokens)
    assert made[id(a)] == alone(llama, first, GREEDY)
    assert made[id(b)] == alone(llama, late, SamplingParams(max_tokens=9, temperature=0))


def test_rows_leave_and_join_without_copying_the_others_cache(llama: DecoderEngine) -> None:
    session = llama.session()
    short, long = SamplingParams(max_tokens=2, temperature=0), GREEDY
    _, stays = session.join([[3, 4, 5, 6, 7, 8, 9, 10], [11, 12]], [short, long])
    made = run(session, steps=2)
    assert session.rows == [stays] and session.cache is not None
    cache, slot = session.cache, session.slots[0]
    held = cache.k[:, slot, :, :4].clone()  # the staying row's prompt and first two tokens
    (late,) = session.join([[13, 14, 15]], [SamplingParams(max_tokens=3, temperature=0)])
    assert session.cache is cache  # same storage: nobody's cache was moved
    assert session.slots == [slot, 0]  # the joiner took the slot the short row freed
    assert torch.equal(cache.k[:, slot, :, :4], held)
    for key, tokens in run(session).items():
        made.setdefault(key, []).extend(tokens)
    assert made[id(stays)] == alone(llama, [11, 12], long)
    assert made[id(late)] == alone(llama, [13, 14, 15], SamplingParams(max_tokens=3, temperature=0))
    assert session.cache is None and session.kv_bytes == 0


def test_the_cache_holds_slots_x_columns_at_the_bytes_per_token_reported(
    llama: DecoderEngine,
) -> None:
    session = llama.session()
    session.join([[1, 2, 3], [4, 5]], [GREEDY, GREEDY])
    assert session.cache is not None
    slots, columns = session.cache.k.shape[1], session.cache.max_len
    assert (slots, columns) == (2, 3 + GREEDY.max_tokens)
    per_token = llama.info.kv_cache_bytes_per_token
    assert per_token is not None and session.kv_bytes == slots * columns * per_token


def test_a_row_whose_client_left_is_dropped_and_the_others_go_on(llama: DecoderEngine) -> None:
    session = llama.session()
    kept, dropped = session.join([[21, 22, 23], [31, 32, 33, 34, 35]], [GREEDY, GREEDY])
    made = run(session, steps=3)
    session.leave([dropped])
    for key, tokens in run(session).items():
        made[key].extend(tokens)
    assert session.rows == [] and session.cache is None
    assert made[id(kept)] == alone(llama, [21, 22, 23], GREEDY)
    assert len(made[id(dropped)]) == 3


def test_rows_end_on_a_stop_token_or_max_tokens(llama: DecoderEngine) -> None:
    prompt = [40, 41, 42]
    free = alone(llama, prompt, GREEDY)
    stop = SamplingParams(max_tokens=12, temperature=0, stop_token_ids=frozenset({free[2]}))
    session = llama.session()
    rows: list[Row] = session.join([prompt, prompt], [stop, SamplingParams(max_tokens=5)])
    made = run(session)
    assert made[id(rows[0])] == free[: free.index(free[2]) + 1]
    assert len(made[id(rows[1])]) == 5 and all(r.done for r in rows)


@pytest.mark.slow
def test_real_text_joining_a_running_batch_reads_the_same(
    smollm: Callable[[str], Engine],
) -> None:
    engine = smollm("fp32")
    assert isinstance(engine, DecoderEngine)
    first, late = engine.tokenize(["The capital of France is", "Water boils at a temperature of"])
    session = engine.session()
    (a,) = session.join([first], [GREEDY])
    made = run(session, steps=5)
    (b,) = session.join([late], [GREEDY])
    for key, tokens in run(session).items():
        made.setdefault(key, []).extend(tokens)
    assert engine.detokenize(made[id(a)]) == engine.detokenize(alone(engine, first, GREEDY))
    assert engine.detokenize(made[id(b)]) == engine.detokenize(alone(engine, late, GREEDY))
    assert "Paris" in engine.detokenize(made[id(a)])


async def test_the_server_side_joins_requests_into_the_running_batch(llama: DecoderEngine) -> None:
    from tierwise_runtime.batching import BatchLimits, EngineWorker
    from tierwise_runtime.completion_service import CompletionService, Finished, TextDelta

    worker = EngineWorker()
    service = CompletionService(llama, worker, BatchLimits(max_batch=4, max_wait_s=0))
    runner = asyncio.create_task(service.batcher.run())
    long, short = SamplingParams(max_tokens=200, temperature=0), GREEDY
    long_ids = llama.tokenize(["alpha beta gamma"])[0]
    assert len(alone(llama, long_ids, long)) == 200  # no end token: it runs its full length

    async def text(stream: Any) -> str:
        return "".join([e.text async for e in stream if isinstance(e, TextDelta)])

    try:
        first = await service.submit(["alpha beta gamma"], long)
        first_events = aiter(first)
        head = await anext(first_events)  # decoding has begun
        second = await service.submit(["delta"], short)
        joined = await text(second)
        assert service._running is not None
        running = [seq.prompt.ids for _, seq, _ in list(service._running.live.values())]
        rest = [e async for e in first_events]
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        worker.close()
    assert long_ids in running  # the short one finished while the long one decoded
    whole = "".join(e.text for e in [head, *rest] if isinstance(e, TextDelta))
    assert any(isinstance(e, Finished) for e in rest)
    for prompt, params, got in (("alpha beta gamma", long, whole), ("delta", short, joined)):
        ids = llama.tokenize([prompt])[0]
        assert got == llama.detokenize(alone(llama, ids, params))


def test_the_width_a_join_would_need_is_the_most_any_one_row_needs(llama: DecoderEngine) -> None:
    session = llama.session()
    assert session.width_after([[1, 2, 3]], [SamplingParams(max_tokens=5)]) == 3 + 5
    session.join([[1, 2, 3, 4]], [GREEDY])  # 4 tokens of history, 12 to make
    run(session, steps=2)  # 6 of history, 10 to make
    assert session.width_after([[9] * 10], [SamplingParams(max_tokens=3)]) == 6 + 10
    assert session.width_after([[9]], [SamplingParams(max_tokens=30)]) == 1 + 30
