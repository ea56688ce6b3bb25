"""A Distributed Map worker takes any number of items: moto's recurses once per item, the runtime's loops.

A worker is driven here with a pool of jobs, as moto's Map Run drives it; the items a worker takes at
10,000 accounts and MaxConcurrency 10 (about 1,000) are beyond Python's default recursion limit.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (  # noqa: E501
    DistributedItemProcessorWorker,
)

from localaws.map_workers import looping_eval_pool, looping_workers


@dataclass
class Job:
    number: int
    job_output: Any = None


@dataclass
class Frame:
    opened: int = 0
    deleted: list[Any] = field(default_factory=list)

    def open_inner_frame(self) -> Frame:
        self.opened += 1
        return Frame()

    def delete_frame(self, frame: Any) -> None:
        self.deleted.append(frame)


@dataclass
class Pool:
    jobs: list[Job]
    closed: list[int] = field(default_factory=list)

    def next_job(self) -> Job | None:
        return self.jobs.pop(0) if self.jobs else None

    def close_job(self, job: Job) -> None:
        self.closed.append(job.number)


class Worker:
    """What ``_eval_pool`` touches of a worker; a job whose number is in ``failing`` ends in an exception."""

    def __init__(self, items: int, failing: frozenset[int] = frozenset()) -> None:
        self._job_pool = Pool([Job(number) for number in range(items)])
        self._env = Frame()  # the Map Run's
        self.frame = Frame()  # the worker's, inside it
        self.failing = failing
        self.evaluated: list[int] = []

    def _eval_job(self, env: Frame, job: Job) -> None:
        self.evaluated.append(job.number)
        job.job_output = RuntimeError("failed") if job.number in self.failing else {"n": job.number}

    def stopped(self) -> bool:
        return False

    def run(self, eval_pool: Any) -> None:
        """Start as ``DistributedItemProcessorWorker.eval`` starts, with ``eval_pool`` as the worker's method."""
        self._eval_pool = lambda job, worker_frame: eval_pool(self, job, worker_frame)
        self._eval_pool(self._job_pool.next_job(), self.frame)


ITEMS = 3 * sys.getrecursionlimit()


def test_moto_s_own_worker_dies_of_recursion_past_the_limit() -> None:
    worker = Worker(ITEMS)
    original = vars(DistributedItemProcessorWorker)["_eval_pool"]
    assert original is not looping_eval_pool, "the loop outlived the LocalAws that installed it"

    with pytest.raises(RecursionError):
        worker.run(original)


def test_a_looping_worker_takes_every_item_and_closes_each_once() -> None:
    worker = Worker(ITEMS)

    worker.run(looping_eval_pool)

    assert worker.evaluated == list(range(ITEMS))
    assert worker._job_pool.closed == list(range(ITEMS))
    assert worker._env.deleted == [worker.frame], "the worker's frame is closed once, at the end"
    assert len(worker.frame.deleted) == worker.frame.opened == ITEMS, "each job's frame is closed"


def test_a_looping_worker_stops_at_the_first_failed_item_as_moto_s_does() -> None:
    looping, recursive = Worker(20, frozenset({7})), Worker(20, frozenset({7}))

    looping.run(looping_eval_pool)
    recursive.run(vars(DistributedItemProcessorWorker)["_eval_pool"])

    assert looping.evaluated == recursive.evaluated == list(range(8))
    assert looping._job_pool.closed == recursive._job_pool.closed == list(range(8))
    assert looping._env.deleted == [looping.frame] and recursive._env.deleted == [recursive.frame]


def test_an_empty_pool_closes_the_frame_and_no_job() -> None:
    looping, recursive = Worker(0), Worker(0)

    looping.run(looping_eval_pool)
    recursive.run(vars(DistributedItemProcessorWorker)["_eval_pool"])

    assert looping._env.deleted == [looping.frame] and recursive._env.deleted == [recursive.frame]
    assert looping._job_pool.closed == recursive._job_pool.closed == []


def test_the_loop_is_installed_only_inside_the_block() -> None:
    original = vars(DistributedItemProcessorWorker)["_eval_pool"]

    with looping_workers():
        assert vars(DistributedItemProcessorWorker)["_eval_pool"] is looping_eval_pool

    assert vars(DistributedItemProcessorWorker)["_eval_pool"] is original
