"""A deterministic scheduler for model threads written as generators.

A model thread is a generator that yields where the kernel could be preempted:

- ``Step(label)``: the thread is about to execute the atomic step ``label`` of the spec
  (step boundaries are the shared-state accesses: a lock acquisition, a read or update
  of ``mm->locked_vm``, a GUP call; thread-local code runs on to the next boundary);
- ``Point(what, amount)``: a point inside a step, e.g. while holding mmap_lock with
  ``amount`` pages pinned; a fine-grained schedule may run other threads there, and a
  performance model attaches costs to these points;
- ``Blocked(what)``: the thread has to wait (a lock poll reported WAIT, or a completion
  is not done); it is resumed to poll again.

Two ways to run: ``run_steps(schedule)`` follows a given interleaving (thread ids, and
event names such as ``"sigkill"``), one spec step per entry, checking each thread is at
the label the schedule expects; ``run_random(seed)`` picks a random runnable thread at
every yield (step boundaries and fine points alike). Both record a ``RunLog`` and call an
observer after every step so the caller can evaluate invariants, and both detect a
deadlock: every unfinished thread blocked with nothing else able to move.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Hashable, Sequence
from dataclasses import dataclass, field

ThreadId = Hashable


@dataclass(frozen=True)
class Step:
    """The thread is at the start of spec step ``label``."""

    label: str


@dataclass(frozen=True)
class Point:
    """A preemption point inside a step (lock held, work done): ``amount`` units of ``what``."""

    what: str
    amount: int = 0


@dataclass(frozen=True)
class Blocked:
    """The thread cannot proceed yet (``what`` it waits for); poll it again later."""

    what: str


Yield = Step | Point | Blocked
ModelThread = Generator[Yield, None, None]


class ScheduleError(Exception):
    """The given interleaving cannot be followed by the model (wrong label, blocked step)."""


@dataclass
class LogEntry:
    """One scheduler decision: who ran (a thread or an event) and which step it executed."""

    index: int
    who: ThreadId
    label: str
    next_label: str


@dataclass
class RunLog:
    """What a run did: the executed steps, and whether it ended in a deadlock."""

    entries: list[LogEntry] = field(default_factory=list)
    deadlock: bool = False
    blocked: dict[ThreadId, str] = field(default_factory=dict)

    def schedule(self) -> list[ThreadId]:
        """The interleaving that reproduces this run with ``run_steps``."""
        return [e.who for e in self.entries]


Observer = Callable[[ThreadId, str, int], None]
MAX_POLLS = 64
STUCK_POLLS = 2
"""A thread is stuck once its poll blocked twice with nothing else happening in between:
the second poll sees every side effect of the first round (a waiter queued, an outside
holder gone)."""


class Scheduler:
    """Runs model threads along a chosen interleaving; see the module docstring."""

    def __init__(self, threads: dict[ThreadId, ModelThread],
                 events: dict[str, Callable[[], None]] | None = None,
                 observer: Observer | None = None) -> None:
        self.threads = dict(threads)
        self.events = dict(events or {})
        self.observer = observer
        self.at: dict[ThreadId, Yield | None] = {}
        self.step_index = 0  # index of the step being executed, for fault plans
        self.log = RunLog()
        for tid, gen in list(self.threads.items()):
            self.at[tid] = None
            self.at[tid] = self._advance(gen)

    def spawn(self, tid: ThreadId, gen: ModelThread) -> None:
        """Add a thread (a queued work); it runs to its first yield at once."""
        if tid in self.threads:
            raise ScheduleError(f"thread {tid!r} exists")
        self.threads[tid] = gen
        self.at[tid] = None
        self.at[tid] = self._advance(gen)

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def _advance(gen: ModelThread) -> Yield | None:
        try:
            return next(gen)
        except StopIteration:
            return None

    def finished(self, tid: ThreadId) -> bool:
        return self.at[tid] is None

    def all_finished(self) -> bool:
        return all(y is None for y in self.at.values())

    def label_of(self, tid: ThreadId) -> str:
        y = self.at[tid]
        return "done" if y is None else y.label if isinstance(y, Step) else f"<{y}>"

    def _record(self, who: ThreadId, label: str, next_label: str) -> None:
        self.log.entries.append(LogEntry(self.step_index, who, label, next_label))
        if self.observer is not None:
            self.observer(who, label, self.step_index)
        self.step_index += 1

    # -- step-level interleavings ---------------------------------------------------------

    def run_step(self, who: ThreadId, expect: str | None = None) -> None:
        """Execute one spec step of thread ``who`` (or fire event ``who``)."""
        if isinstance(who, str) and who in self.events:
            self.events[who]()
            self._record(who, who, who)
            return
        if who not in self.threads:
            raise ScheduleError(f"step {self.step_index}: no thread or event {who!r}")
        y = self.at[who]
        if y is None:
            raise ScheduleError(f"step {self.step_index}: thread {who!r} has finished")
        if not isinstance(y, Step):
            raise ScheduleError(f"step {self.step_index}: thread {who!r} is not at a step ({y})")
        if expect is not None and y.label != expect:
            raise ScheduleError(f"step {self.step_index}: thread {who!r} is at {y.label!r}, "
                                f"the schedule expects {expect!r}")
        gen = self.threads[who]
        polls = 0
        while True:
            nxt = self._advance(gen)
            if isinstance(nxt, Blocked):
                polls += 1
                if polls > MAX_POLLS:
                    raise ScheduleError(f"step {self.step_index}: thread {who!r} blocks in "
                                        f"{y.label!r} ({nxt.what})")
                continue
            if isinstance(nxt, Point):
                continue
            self.at[who] = nxt
            break
        self._record(who, y.label, self.label_of(who))

    def run_steps(self, schedule: Sequence[ThreadId],
                  labels: Sequence[str | None] | None = None) -> RunLog:
        """Follow ``schedule``; ``labels[k]``, if given, is the label step k must execute."""
        for k, who in enumerate(schedule):
            self.run_step(who, None if labels is None else labels[k])
        return self.log

    # -- random interleavings -------------------------------------------------------------

    def run_random(self, seed: int, max_yields: int = 100_000,
                   events: Callable[[random.Random, int], str | None] | None = None) -> RunLog:
        """Run to the end choosing a random unfinished thread at every yield.

        ``events(rng, tick)`` may return an event name to fire before the next pick.
        A deadlock is declared when every unfinished thread reported Blocked on its last
        ``STUCK_POLLS`` polls with no progress anywhere in between.
        """
        rng = random.Random(seed)
        blocked: dict[ThreadId, int] = {}  # consecutive Blocked polls since the last progress
        current: dict[ThreadId, str] = {t: self.label_of(t) for t in self.threads}
        for tick in range(max_yields):
            if self.all_finished():
                return self.log
            if events is not None:
                ev = events(rng, tick)
                if ev is not None:
                    self.events[ev]()
                    self._record(ev, ev, ev)
                    blocked.clear()
            alive = [t for t in self.threads if not self.finished(t)]
            fresh = [t for t in alive if blocked.get(t, 0) < STUCK_POLLS]
            who = rng.choice(fresh or alive)
            current.setdefault(who, self.label_of(who))
            nxt = self._advance(self.threads[who])
            self.at[who] = nxt
            if isinstance(nxt, Blocked):
                blocked[who] = blocked.get(who, 0) + 1
                if all(blocked.get(t, 0) >= STUCK_POLLS for t in alive):
                    self.log.deadlock = True
                    self.log.blocked = {t: str(self.at[t]) for t in alive}
                    return self.log
                continue
            blocked.clear()
            if nxt is None or isinstance(nxt, Step):
                # the step the thread was executing is complete
                self._record(who, current[who], self.label_of(who))
                current[who] = self.label_of(who)
        raise ScheduleError(f"no end after {max_yields} yields (livelock?)")
