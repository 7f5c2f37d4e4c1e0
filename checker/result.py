"""Verdicts: what an engine established about one property of one spec variant."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker.trace import Trace

PASS = "PASS"  # explicit engine: exhaustive for these parameters
VIOLATED = "VIOLATED"
INCOMPLETE = "INCOMPLETE"  # a limit cut the search short
PROVED = "PROVED"  # SMT: all depths (and all values of symbolic parameters)
BOUNDED_OK = "BOUNDED-OK"  # SMT: no violation up to the depth bound
UNKNOWN = "UNKNOWN"  # solver gave up
HOLDS = (PASS, PROVED)


@dataclass
class Result:
    """One row of the verdict table; the JSON output is these fields."""

    spec: str
    source: str
    variant: str
    parameters: dict[str, Any]
    property: str
    kind: str
    engine: str
    expected: str | None  # PASS, VIOLATED, or None (no claim)
    verdict: str
    states: int = 0
    transitions: int = 0
    depth: int = 0
    seconds: float = 0.0
    peak_memory_mib: float = 0.0
    reason: str = ""  # why INCOMPLETE / UNKNOWN, or what BOUNDED-OK covered
    trace: Trace | None = None
    trace_path: Path | None = None
    detail: str = ""  # extra report text (lockdep splat, wait-for cycle)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settled(self) -> bool:
        return self.verdict in (PASS, VIOLATED, PROVED)

    @property
    def mismatch(self) -> bool:
        """A settled verdict that contradicts the declared expectation."""
        if self.expected is None or not self.settled:
            return False
        return (self.verdict == VIOLATED) != (self.expected == VIOLATED)

    @property
    def inconclusive(self) -> bool:
        """The expectation could not be confirmed (limits, bounded only, solver gave up)."""
        if self.expected is None:
            return False
        if self.verdict == BOUNDED_OK:
            return self.expected != VIOLATED
        return not self.settled

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "source": self.source,
            "variant": self.variant,
            "parameters": self.parameters,
            "property": self.property,
            "kind": self.kind,
            "engine": self.engine,
            "expected": self.expected,
            "verdict": self.verdict,
            "as_expected": not self.mismatch and not self.inconclusive,
            "states": self.states,
            "transitions": self.transitions,
            "depth": self.depth,
            "seconds": round(self.seconds, 4),
            "peak_memory_mib": round(self.peak_memory_mib, 1),
            "reason": self.reason,
            "trace": None if self.trace_path is None else str(self.trace_path),
            "trace_length": None if self.trace is None else len(self.trace),
            **({"extra": self.extra} if self.extra else {}),
        }


def exit_code(results: list[Result]) -> int:
    """0 all as expected, 1 some settled verdict differs, 3 some verdict inconclusive."""
    if any(r.mismatch for r in results):
        return 1
    if any(r.inconclusive for r in results):
        return 3
    return 0
