"""Kernel functions as generators that pause before every shared-memory access.

A model function is written as plain sequential Python mirroring the kernel code, but each
load, store, atomic or TLB maintenance operation first yields a `Point` naming the access
site. Running the generator to completion is an ordinary call (`run`); resuming it one
point at a time lets a test or a trace replay interleave the hardware agent and other
threads exactly where the real code can be interrupted: between two accesses.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Point:
    """The next atomic access: its site (the spec label), kernel function and PTE index."""

    site: str
    kernel: str
    index: int

    def __str__(self) -> str:
        return f"{self.kernel} [{self.site} @{self.index}]"


Op = Generator[Point, None, T]


def run(op: Op[T], between: Callable[[Point], None] | None = None) -> T:
    """Run an operation to completion; `between(point)` runs before each access."""
    while True:
        try:
            point = next(op)
        except StopIteration as stop:
            return stop.value
        if between is not None:
            between(point)


class Thread:
    """One in-flight operation that can be advanced one access at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.op: Op[Any] | None = None
        self.point: Point | None = None
        self.result: Any = None
        self.finished = True

    def start(self, op: Op[Any]) -> None:
        if not self.finished:
            raise RuntimeError(f"{self.name}: an operation is still running")
        self.op, self.finished, self.result = op, False, None
        self._advance()

    def step(self) -> Point:
        """Perform the pending access (and the local work up to the next one)."""
        if self.finished or self.point is None:
            raise RuntimeError(f"{self.name}: nothing to step")
        done = self.point
        self._advance()
        return done

    def _advance(self) -> None:
        assert self.op is not None
        try:
            self.point = next(self.op)
        except StopIteration as stop:
            self.point, self.finished, self.result = None, True, stop.value
