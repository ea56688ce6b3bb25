"""A Distributed Map worker that takes its items in a loop, as AWS's does, not in a recursion.

moto's ``DistributedItemProcessorWorker._eval_pool`` calls itself once after every item it finishes,
so a worker goes one Python frame deeper per item. With 10,000 accounts and ``MaxConcurrency`` 10, each
worker takes about 1,000 items and dies with ``RecursionError`` well before the end, and the Map Run
never ends. :func:`looping_eval_pool` does the same steps in the same order, in a loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (  # noqa: E501
    DistributedItemProcessorWorker,
)

from localaws.patching import patched


def looping_eval_pool(worker: Any, job: Any, worker_frame: Any) -> None:
    """Evaluate ``job`` and then every next job of the pool, until the pool is empty, a job fails or the
    worker is stopped; close each job and the worker's frame as moto's recursive version does."""
    while job is not None:
        job_frame = worker_frame.open_inner_frame()
        worker._eval_job(env=job_frame, job=job)
        worker_frame.delete_frame(job_frame)
        if isinstance(job.job_output, Exception) or worker.stopped():
            break
        next_job = worker._job_pool.next_job()
        if next_job is None:
            # The frame closes before the job: the Map state waits for its jobs, not for its workers.
            break
        worker._job_pool.close_job(job)
        job = next_job
    worker._env.delete_frame(worker_frame)
    if job is not None:
        worker._job_pool.close_job(job)


@contextmanager
def looping_workers() -> Iterator[None]:
    """Distributed Map workers loop over their items for the block."""
    with patched(DistributedItemProcessorWorker, "_eval_pool", looping_eval_pool):
        yield
