"""The dynamic batcher: bounded admission, batches bounded in size and wait, dead items dropped."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

from tierwise_runtime.batching import BatchLimits, DynamicBatcher, QueueFull


@dataclass(eq=False)
class Item:
    name: str
    gone: bool = False
    failures: list[BaseException] = field(default_factory=list)

    def abandoned(self) -> bool:
        return self.gone

    def fail(self, exc: BaseException) -> None:
        self.failures.append(exc)


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.ran = asyncio.Event()
        self.fail = fail

    async def __call__(self, batch: list[Item]) -> None:
        self.batches.append([item.name for item in batch])
        self.ran.set()
        if self.fail:
            raise RuntimeError("engine exploded")


async def run_batcher(batcher: DynamicBatcher[Item]) -> asyncio.Task[None]:
    task = asyncio.create_task(batcher.run())
    await asyncio.sleep(0)
    return task


def submit(batcher: DynamicBatcher[Item], *names: str) -> list[Item]:
    items = [Item(name) for name in names]
    with batcher.reserve(len(items)) as slots:
        slots.submit(items)
    return items


async def test_items_arriving_within_the_wait_share_one_batch() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher[Item](BatchLimits(max_batch=8, max_wait_s=0.2), recorder)
    task = await run_batcher(batcher)
    submit(batcher, "a")
    await asyncio.sleep(0.02)
    submit(batcher, "b", "c")
    await asyncio.wait_for(recorder.ran.wait(), 2)
    task.cancel()
    assert recorder.batches == [["a", "b", "c"]]


async def test_a_full_batch_runs_without_waiting_out_the_deadline() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher[Item](BatchLimits(max_batch=2, max_wait_s=30), recorder)
    task = await run_batcher(batcher)
    submit(batcher, "a", "b", "c")
    await asyncio.wait_for(recorder.ran.wait(), 2)
    task.cancel()
    assert recorder.batches[0] == ["a", "b"]


async def test_a_lone_item_runs_once_its_wait_is_over() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher[Item](BatchLimits(max_batch=64, max_wait_s=0.1), recorder)
    task = await run_batcher(batcher)
    started = time.monotonic()
    submit(batcher, "a")
    await asyncio.wait_for(recorder.ran.wait(), 2)
    waited = time.monotonic() - started
    task.cancel()
    assert 0.09 <= waited < 1.0


async def test_reserving_past_the_queue_bound_is_refused_at_once() -> None:
    batcher = DynamicBatcher[Item](BatchLimits(max_queue=3), Recorder())
    batcher.reserve(2)
    with pytest.raises(QueueFull, match="2 of 3 items waiting, 2 more asked"):
        batcher.reserve(2)
    assert batcher.waiting == 2
    batcher.reserve(1)
    assert batcher.waiting == 3


async def test_slots_of_a_request_that_fails_before_submitting_are_given_back() -> None:
    depths: list[int] = []
    batcher = DynamicBatcher[Item](BatchLimits(max_queue=4), Recorder(), on_depth=depths.append)
    with pytest.raises(ValueError, match="bad input"), batcher.reserve(3):
        raise ValueError("bad input")
    assert batcher.waiting == 0
    assert depths == [3, 0]


async def test_submitting_fewer_items_than_reserved_gives_the_rest_back() -> None:
    batcher = DynamicBatcher[Item](BatchLimits(max_queue=4), Recorder())
    with batcher.reserve(3) as slots:
        slots.submit([Item("a")])
    assert batcher.waiting == 1


async def test_items_whose_client_went_away_are_dropped_unrun() -> None:
    recorder = Recorder()
    sizes: list[int] = []
    batcher = DynamicBatcher[Item](
        BatchLimits(max_batch=8, max_wait_s=0.01), recorder, on_batch=sizes.append
    )
    items = submit(batcher, "a", "b", "c")
    items[1].gone = True
    task = await run_batcher(batcher)
    await asyncio.wait_for(recorder.ran.wait(), 2)
    task.cancel()
    assert recorder.batches == [["a", "c"]]
    assert sizes == [2]
    assert batcher.waiting == 0


async def test_a_failing_batch_fails_each_of_its_items_and_the_batcher_goes_on() -> None:
    recorder = Recorder(fail=True)
    batcher = DynamicBatcher[Item](BatchLimits(max_batch=2, max_wait_s=0), recorder)
    task = await run_batcher(batcher)
    first = submit(batcher, "a", "b")
    await asyncio.wait_for(recorder.ran.wait(), 2)
    recorder.ran.clear()
    submit(batcher, "c")
    await asyncio.wait_for(recorder.ran.wait(), 2)
    task.cancel()
    assert [str(exc) for item in first for exc in item.failures] == ["engine exploded"] * 2
    assert recorder.batches == [["a", "b"], ["c"]]


async def test_stopping_the_batcher_fails_the_running_batch_and_what_is_queued() -> None:
    started = asyncio.Event()

    async def never_finishes(batch: list[Item]) -> None:
        started.set()
        await asyncio.Event().wait()

    batcher = DynamicBatcher[Item](BatchLimits(max_batch=1, max_wait_s=0), never_finishes)
    task = await run_batcher(batcher)
    running, queued = submit(batcher, "running", "queued")
    await asyncio.wait_for(started.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [str(exc) for exc in running.failures + queued.failures] == [
        "the server is shutting down"
    ] * 2
    assert batcher.waiting == 0


@pytest.mark.parametrize(
    "limits",
    [{"max_batch": 0}, {"max_queue": 0}, {"max_wait_s": -0.001}],
)
def test_limits_refuse_impossible_bounds(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        BatchLimits(**limits)  # type: ignore[arg-type]
