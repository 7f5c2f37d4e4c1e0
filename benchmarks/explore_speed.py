"""Explorer speed: states/second of the explicit engine on the counter benchmark spec.

Run on demand: `python benchmarks/explore_speed.py [--threads 5 --rounds 2]`. Prints the
machine, the state count and the rate; never part of the test suite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.specs_counter import build  # noqa: E402
from checker.bench import machine  # noqa: E402
from checker.run import check  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    c = check(build(threads=args.threads, rounds=args.rounds), "benchmarks/specs_counter.py")
    st = c.exploration.stats
    print(f"machine: {machine()}")
    print(f"counter spec threads={args.threads} rounds={args.rounds}: {st.states:,} states, "
          f"{st.transitions:,} transitions, depth {st.depth}, {st.seconds:.1f} s, "
          f"{st.rate:,.0f} states/s, peak {st.peak_memory_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
