import asyncio

import pytest

from inferd.server.batching import Batcher, BatchMismatchError, QueueFullError


class Recorder:
    """A `run` whose first call waits on `gate`, so that later requests pile up behind it."""

    def __init__(self, result=lambda key, x: (key, x)):
        self.calls: list[tuple[object, list]] = []
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.result = result

    async def __call__(self, key, inputs):
        self.calls.append((key, list(inputs)))
        self.started.set()
        await self.gate.wait()
        return [self.result(key, x) for x in inputs]


async def test_one_request_runs_alone_without_waiting():
    rec = Recorder()
    rec.gate.set()
    batcher = Batcher(rec)
    assert await batcher.submit("k", [1]) == [("k", 1)]
    assert rec.calls == [("k", [1])]
    await batcher.close()


async def behind_a_running_batch(batcher, rec, first, later):
    """Submit `first` (key, inputs); once its batch holds the model, submit every request of `later`, then let
    the model go. The results of all, in submission order."""
    running = asyncio.create_task(batcher.submit(*first))
    await rec.started.wait()
    queued = [asyncio.create_task(batcher.submit(key, inputs)) for key, inputs in later]
    await asyncio.sleep(0)
    rec.gate.set()
    return await asyncio.gather(running, *queued)


async def test_requests_arriving_during_a_batch_share_the_next_call():
    rec = Recorder()
    batcher = Batcher(rec, max_batch_size=8)
    first, *rest = await behind_a_running_batch(batcher, rec, ("k", ["a"]), [("k", [i]) for i in range(5)])
    assert first == [("k", "a")]
    assert rest == [[("k", i)] for i in range(5)]
    assert rec.calls == [("k", ["a"]), ("k", [0, 1, 2, 3, 4])]
    await batcher.close()


async def test_different_keys_do_not_share_a_call_and_keep_their_order():
    rec = Recorder()
    batcher = Batcher(rec)
    await behind_a_running_batch(batcher, rec, ("a", [0]), [(k, [i]) for i, k in enumerate("abab", 1)])
    assert rec.calls == [("a", [0]), ("a", [1, 3]), ("b", [2, 4])]
    await batcher.close()


async def test_max_batch_size_counts_items_not_requests():
    rec = Recorder()
    batcher = Batcher(rec, max_batch_size=4)
    results = await behind_a_running_batch(batcher, rec, ("k", [0]), [("k", [i, i]) for i in range(1, 4)])
    assert results[2] == [("k", 2), ("k", 2)]
    assert [len(inputs) for _, inputs in rec.calls] == [1, 4, 2]
    await batcher.close()


def _text_cost(key, inputs):
    return sum(len(x) for x in inputs)


async def test_a_token_budget_splits_long_inputs_and_packs_short_ones():
    rec = Recorder()
    batcher = Batcher(rec, max_batch_size=100, max_batch_tokens=10, cost=_text_cost)
    texts = ["aaaa", "bbbb", "cccc", "d", "e", "f", "g", "h", "i"]
    results = await behind_a_running_batch(batcher, rec, ("k", ["x"]), [("k", [t]) for t in texts])
    assert results[1:] == [[("k", t)] for t in texts]
    # 4+4 fits in 10, +4 would not; then 4 + six 1-token texts = 10; arrival order is kept.
    assert [inputs for _, inputs in rec.calls] == [
        ["x"],
        ["aaaa", "bbbb"],
        ["cccc", "d", "e", "f", "g", "h", "i"],
    ]
    await batcher.close()


async def test_a_request_over_the_token_budget_runs_alone_and_is_not_split():
    rec = Recorder()
    batcher = Batcher(rec, max_batch_tokens=4, cost=_text_cost)
    _, big, small = await behind_a_running_batch(
        batcher, rec, ("k", ["x"]), [("k", ["abcdef", "gh"]), ("k", ["z"])]
    )
    assert big == [("k", "abcdef"), ("k", "gh")]
    assert small == [("k", "z")]
    assert [inputs for _, inputs in rec.calls] == [["x"], ["abcdef", "gh"], ["z"]]
    await batcher.close()


async def test_without_a_cost_function_the_token_budget_is_ignored():
    rec = Recorder()
    batcher = Batcher(rec, max_batch_tokens=1)
    assert batcher.max_batch_tokens == 0
    await behind_a_running_batch(batcher, rec, ("k", ["long text"]), [("k", ["more text"])] * 3)
    assert [len(inputs) for _, inputs in rec.calls] == [1, 3]
    await batcher.close()


async def test_a_full_token_budget_ends_the_wait_for_more():
    rec = Recorder()
    rec.gate.set()
    batcher = Batcher(rec, max_wait_s=30.0, max_batch_tokens=3, cost=_text_cost)
    first = asyncio.create_task(batcher.submit("k", ["a"]))
    await _turns()
    assert rec.calls == []  # 1 token of 3: the batch waits for more
    # The wait would last 30 s; the request that spends the budget makes the batch run at once.
    second = await asyncio.wait_for(batcher.submit("k", ["bc"]), 5)
    assert await first == [("k", "a")] and second == [("k", "bc")]
    assert rec.calls == [("k", ["a", "bc"])]
    await batcher.close()


async def test_an_error_reaches_every_waiter_and_the_batcher_keeps_serving():
    calls = []

    async def run(key, inputs):
        calls.append(list(inputs))
        if len(calls) == 2:
            raise RuntimeError("boom")
        await gate.wait()
        return inputs

    gate = asyncio.Event()
    batcher = Batcher(run)
    first = asyncio.create_task(batcher.submit("k", [0]))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(batcher.submit("k", [i])) for i in (1, 2)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == [0]
    for t in tasks:
        with pytest.raises(RuntimeError, match="boom"):
            await t
    assert await batcher.submit("k", [9]) == [9]
    await batcher.close()


async def test_split_on_reruns_a_failed_batch_one_request_at_a_time():
    async def run(key, inputs):
        await gate.wait()
        if "bad" in inputs:
            raise ValueError("bad input")
        return inputs

    gate = asyncio.Event()
    batcher = Batcher(run, split_on=lambda exc: isinstance(exc, ValueError))
    first = asyncio.create_task(batcher.submit("k", ["x"]))
    await asyncio.sleep(0)
    good = asyncio.create_task(batcher.submit("k", ["ok"]))
    bad = asyncio.create_task(batcher.submit("k", ["bad"]))
    await asyncio.sleep(0)
    gate.set()
    assert await first == ["x"]
    assert await good == ["ok"]
    with pytest.raises(ValueError):
        await bad
    await batcher.close()


async def test_a_wrong_result_count_fails_the_whole_batch():
    async def run(key, inputs):
        return inputs[:-1]

    batcher = Batcher(run)
    with pytest.raises(BatchMismatchError, match="2 inputs returned 1"):
        await batcher.submit("k", [1, 2])
    await batcher.close()


async def test_cancelled_waiters_are_skipped_before_running():
    rec = Recorder()
    batcher = Batcher(rec)
    first = asyncio.create_task(batcher.submit("k", [0]))
    await rec.started.wait()
    gone = asyncio.create_task(batcher.submit("k", ["gone"]))
    kept = asyncio.create_task(batcher.submit("k", ["kept"]))
    await asyncio.sleep(0)
    assert batcher.queued == 2
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert batcher.queued == 1
    rec.gate.set()
    await first
    assert await kept == [("k", "kept")]
    assert rec.calls == [("k", [0]), ("k", ["kept"])]
    await batcher.close()


async def test_a_full_queue_refuses_at_once():
    rec = Recorder()
    batcher = Batcher(rec, max_queue=2)
    first = asyncio.create_task(batcher.submit("k", [0]))
    await rec.started.wait()
    queued = [asyncio.create_task(batcher.submit("k", [i])) for i in (1, 2)]
    await asyncio.sleep(0)
    with pytest.raises(QueueFullError):
        await batcher.submit("k", [3])
    rec.gate.set()
    await asyncio.gather(first, *queued)
    await batcher.close()


async def test_info_reports_batch_size_and_on_batch_sees_every_run():
    seen = []
    rec = Recorder()
    batcher = Batcher(rec, on_batch=seen.append)
    first = asyncio.create_task(batcher.submit("k", [0]))
    await rec.started.wait()
    info: dict = {}
    second = asyncio.create_task(batcher.submit("k", [1, 2], info))
    third = asyncio.create_task(batcher.submit("k", [3]))
    await asyncio.sleep(0)
    rec.gate.set()
    await asyncio.gather(first, second, third)
    assert info["batch_size"] == 3 and info["queue_s"] >= 0 and info["run_s"] >= 0
    assert [(b.items, b.requests) for b in seen] == [(1, 1), (3, 2)]
    await batcher.close()


async def _turns(n: int = 20) -> None:
    """Let the event loop run `n` times: long enough for an idle worker to take and run what is queued."""
    for _ in range(n):
        await asyncio.sleep(0)


async def _arriving_one_by_one(batcher, n):
    """Submit n requests, each after the event loop has had its turns (as requests from separate clients
    arrive), and return them as tasks."""
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(batcher.submit("k", [i])))
        await _turns()
    return tasks


@pytest.mark.parametrize("max_wait_s, calls", [(0.0, [[0], [1], [2]]), (30.0, [[0, 1, 2]])])
async def test_max_wait_gathers_requests_that_arrive_soon_after(max_wait_s, calls):
    rec = Recorder()
    rec.gate.set()
    batcher = Batcher(rec, max_wait_s=max_wait_s, max_batch_size=3)
    # Without a wait each request runs as soon as it arrives; with one, the first waits for the next two. The
    # batch is full before the 30 s wait ends, so nothing here depends on the clock.
    tasks = await _arriving_one_by_one(batcher, 3)
    assert await asyncio.gather(*tasks) == [[("k", i)] for i in range(3)]
    assert [inputs for _, inputs in rec.calls] == calls
    await batcher.close()


async def test_a_partial_batch_runs_when_its_wait_ends():
    rec = Recorder()
    rec.gate.set()
    batcher = Batcher(rec, max_wait_s=0.01, max_batch_size=8)
    first = asyncio.create_task(batcher.submit("k", [0]))
    await _turns()
    assert rec.calls == []  # waiting for more
    assert await asyncio.wait_for(first, 5) == [("k", 0)]  # nobody came: it runs alone once the wait is over
    assert rec.calls == [("k", [0])]
    await batcher.close()


async def test_the_next_batch_is_called_while_one_runs_and_one_more_waits_for_room():
    calls: list[list] = []
    gates: list[asyncio.Event] = []
    called = asyncio.Condition()

    async def run(key, inputs):
        gate = asyncio.Event()
        calls.append(list(inputs))
        gates.append(gate)
        async with called:
            called.notify_all()
        await gate.wait()  # stands for the model thread: calls finish in call order
        return inputs

    async def calls_made(n):
        async with called:
            await called.wait_for(lambda: len(calls) >= n)

    batcher = Batcher(run)
    first = asyncio.create_task(batcher.submit("k", [0]))
    await calls_made(1)
    second = [asyncio.create_task(batcher.submit("k", [i])) for i in (1, 2)]
    await calls_made(2)  # prefetched: called although the first batch has not returned
    assert calls == [[0], [1, 2]]
    assert batcher.queued == 2  # waiting behind the running batch
    third = asyncio.create_task(batcher.submit("k", [3]))
    await asyncio.sleep(0)
    assert batcher.queued == 3 and len(calls) == 2  # no room: one batch runs, one is prefetched
    gates[0].set()
    assert await first == [0]
    await calls_made(3)  # the first landed: the third batch is formed and called
    assert calls[2] == [3]
    for gate in gates[1:]:
        gate.set()
    assert await asyncio.gather(*second, third) == [[1], [2], [3]]
    assert batcher.idle
    await batcher.close()


async def test_without_prefetch_the_next_batch_waits_for_the_running_one():
    rec = Recorder()
    batcher = Batcher(rec, prefetch=0)
    first = asyncio.create_task(batcher.submit("k", [0]))
    await rec.started.wait()
    second = asyncio.create_task(batcher.submit("k", [1]))
    for _ in range(3):
        await asyncio.sleep(0)
    assert rec.calls == [("k", [0])] and batcher.queued == 1
    rec.gate.set()
    assert await asyncio.gather(first, second) == [[("k", 0)], [("k", 1)]]
    await batcher.close()


async def test_close_fails_the_running_and_the_prefetched_batch():
    rec = Recorder()
    batcher = Batcher(rec)
    first = asyncio.create_task(batcher.submit("k", [0]))
    await rec.started.wait()
    second = asyncio.create_task(batcher.submit("k", [1]))
    while len(rec.calls) < 2:
        await asyncio.sleep(0)
    await batcher.close()
    for task in (first, second):
        with pytest.raises(RuntimeError):
            await task


async def test_a_prefetched_batch_that_loses_a_request_is_formed_again_without_it():
    rec = Recorder()
    batcher = Batcher(rec)
    first = asyncio.create_task(batcher.submit("k", [0]))
    await rec.started.wait()
    gone = asyncio.create_task(batcher.submit("k", ["gone"]))
    kept = asyncio.create_task(batcher.submit("k", ["kept"]))
    while len(rec.calls) < 2:  # the prefetched call [gone, kept] is made
        await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    while len(rec.calls) < 3:  # recalled and formed again
        await asyncio.sleep(0)
    rec.gate.set()
    assert await first == [("k", 0)]
    assert await kept == [("k", "kept")]
    assert rec.calls[2] == ("k", ["kept"])
    await batcher.close()
