"""Twin of padata's multithreaded jobs (kernel/padata.c, v5.16 + RFC "padata: undo").

``padata_do_multithreaded`` splits ``[start, start + size)`` into chunks of
``chunk_size``; every helper (the caller itself plus ``nworks - 1`` queued kworkers)
loops in ``padata_mt_helper``: under ``ps->lock`` it records the result of its previous
chunk (the first error is kept; with an ``undo_fn`` the failed range is remembered) and,
while work remains and no error was recorded, takes the next chunk. The caller then
waits for every helper and, after an error, runs ``padata_undo``: ``undo_fn`` on every
completed range, skipping the failed chunks (their thread_fn undid its own part).

Abstraction: ``chunk_size`` is given by the caller (the kernel computes
``max(size / (4 * nworks), min_chunk)`` rounded up to ``align``; every value here is that
for some size and min_chunk). With one work the kernel skips the machinery and calls
``thread_fn`` on the whole range, as here.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from model.locks import SpinLock
from model.schedule import Blocked, Step, Yield

Gen = Generator[Yield, None, int]
QueueWork = Callable[["PadataMtJobState"], None]


@dataclass
class PadataMtJob:
    """struct padata_mt_job (align/min_chunk folded into chunk_size, see module doc)."""

    thread_fn: Callable[..., Gen]
    fn_arg: Any
    start: int
    size: int
    chunk_size: int
    undo_fn: Callable[..., Gen] | None
    max_threads: int


@dataclass
class PadataWork:
    """struct padata_work with the RFC's error range."""

    owner: int
    error_offset: int = 0
    error_start: int = 0
    error_end: int = 0


@dataclass
class PadataMtJobState:
    """struct padata_mt_job_state."""

    job: PadataMtJob
    nworks: int
    chunk_size: int
    position: int
    remaining_size: int
    lock: SpinLock = field(default_factory=lambda: SpinLock("ps->lock"))
    nworks_fini: int = 0
    error: int = 0
    failed_works: list[PadataWork] = field(default_factory=list)
    completion: bool = False


def roundup(x: int, y: int) -> int:
    return (x + y - 1) // y * y


def spin_lock(lock: SpinLock, owner: int) -> Generator[Yield, None, None]:
    while not lock.spin_lock(owner):
        yield Blocked(lock.name)


def padata_mt_helper(t: Any, ps: PadataMtJobState, pw: PadataWork) -> Gen:
    """padata_mt_helper: take chunks under ps->lock until none is left or one failed."""
    job = ps.job
    yield Step("helper")
    yield from spin_lock(ps.lock, pw.owner)
    while ps.remaining_size > 0 and ps.error == 0:
        position_offset = job.size - ps.remaining_size
        position = ps.position
        # So end is chunk size aligned if enough work remains.
        size = roundup(position + 1, ps.chunk_size) - position
        size = min(size, ps.remaining_size)
        end = position + size
        ps.position = end
        ps.remaining_size -= size
        ps.lock.spin_unlock(pw.owner)

        ret = yield from job.thread_fn(t, position, end, job.fn_arg)

        yield Step("helper")
        yield from spin_lock(ps.lock, pw.owner)
        if ret:
            # Save first error code only.
            if ps.error == 0:
                ps.error = ret
            # Save information about where the job failed.
            if job.undo_fn is not None:
                ps.failed_works.append(pw)
                pw.error_start = position
                pw.error_offset = position_offset
                pw.error_end = end
    ps.nworks_fini += 1
    done = ps.nworks_fini == ps.nworks
    ps.lock.spin_unlock(pw.owner)
    if done:
        ps.completion = True  # complete(&ps->completion)
    return 0


def padata_undo(t: Any, ps: PadataMtJobState) -> Gen:
    """padata_undo: undo_fn on completed work, skipping the failed ranges (sorted)."""
    job = ps.job
    failed = sorted(ps.failed_works, key=lambda w: w.error_offset)
    undo_pos = job.start
    while undo_pos != ps.position:
        failed_work = failed[0] if failed else None
        undo_end = failed_work.error_start if failed_work else ps.position
        if undo_pos != undo_end:
            assert job.undo_fn is not None
            yield Step("padata_undo")
            yield from job.undo_fn(t, undo_pos, undo_end, job.fn_arg)
        if failed_work:
            undo_pos = failed_work.error_end
            failed.pop(0)
        else:
            undo_pos = undo_end
    return 0


def padata_nworks(job: PadataMtJob) -> int:
    """Helpers the job gets: one per chunk, at most max_threads."""
    return min(max(job.size // job.chunk_size, 1), job.max_threads)


def padata_start(job: PadataMtJob, queue_work: QueueWork) -> PadataMtJobState:
    """The setup half of padata_do_multithreaded: job state and the queued kworkers."""
    ps = PadataMtJobState(job, padata_nworks(job), job.chunk_size, job.start, job.size)
    for _ in range(ps.nworks - 1):
        queue_work(ps)
    return ps


def padata_do_multithreaded(t: Any, job: PadataMtJob, caller: int,
                            queue_work: QueueWork) -> Gen:
    """padata_do_multithreaded: run the job on the caller and the helpers; undo on error."""
    if job.size == 0:
        return 0
    if padata_nworks(job) == 1:
        # Single thread, no coordination needed, cut to the chase.
        ret = yield from job.thread_fn(t, job.start, job.start + job.size, job.fn_arg)
        return ret
    ps = padata_start(job, queue_work)
    # Use the current thread, which saves starting a workqueue worker.
    yield from padata_mt_helper(t, ps, PadataWork(caller))
    # Wait for all the helpers to finish.
    yield Step("wait")
    while not ps.completion:
        yield Blocked("completion")
    if ps.error and job.undo_fn is not None:
        yield from padata_undo(t, ps)
    return ps.error
