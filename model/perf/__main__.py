"""``python -m model.perf``: see model/perf/cli.py."""

import sys

from model.perf.cli import main

sys.exit(main())
