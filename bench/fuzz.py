"""Long fuzzing of every parser boundary: the suite's property-based tests, many random examples.

The suite (``make test``) runs each ``@pytest.mark.fuzz`` test with a few dozen derandomized
examples (tests/conftest.py, profile "ci") so it stays fast and reproducible. This runs the same
tests under the "fuzz" profile: random seeds and ``--examples`` examples each, and prints how many
examples each test ran (hypothesis statistics). A failure prints hypothesis's minimal example and
the command to reproduce it; the bench exits non-zero.

    .venv/bin/python -m bench.fuzz [--examples 3000] [-k robots] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# hypothesis --hypothesis-show-statistics: a "tests/x.py::test_y:" line, then per phase (explicit,
# reuse, generate, shrink) "- during <phase> phase (...):" and a count line, worded
# "N passing, N failing, and N invalid test cases" (6.1xx) or "N passing examples, N failing
# examples, N invalid examples" (older).
_TEST = re.compile(r"^(tests/\S+::\S+):\s*$", re.M)
_PHASE = re.compile(r"^\s*-\s*during (\w+) phase", re.M)
_COUNTS = re.compile(r"(\d+) passing(?: examples?)?, (\d+) failing(?: examples?)?,(?: and)? (\d+) invalid")


def parse_statistics(out: str) -> list[tuple[str, dict]]:
    """[(test id, {phase: (passing, failing, invalid)})] from pytest's hypothesis statistics."""
    stats_at = out.find("Hypothesis Statistics")
    text = out[stats_at:] if stats_at >= 0 else ""
    heads = list(_TEST.finditer(text))
    found = []
    for head, nxt in zip(heads, heads[1:] + [None]):
        block = text[head.end():nxt.start() if nxt else len(text)]
        phases = {}
        marks = list(_PHASE.finditer(block))
        for mark, after in zip(marks, marks[1:] + [None]):
            counts = _COUNTS.search(block, mark.end(), after.start() if after else len(block))
            if counts:
                phases[mark.group(1)] = tuple(int(n) for n in counts.groups())
        found.append((head.group(1), phases))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3000, help="examples per fuzz test (default 3000)")
    parser.add_argument("-k", default="", help="only tests matching this pytest -k expression")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    args = parser.parse_args(argv)
    env = dict(os.environ, WIT_HYPOTHESIS_PROFILE="fuzz", WIT_FUZZ_EXAMPLES=str(args.examples))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "fuzz",
           "--hypothesis-show-statistics", "tests"]
    if args.k:
        cmd += ["-k", args.k]
    if args.seed is not None:
        cmd += [f"--hypothesis-seed={args.seed}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    tests = parse_statistics(out)
    total = failing_total = 0
    # "examples": test cases run in every phase (generated, replayed, shrunk), invalid ones apart.
    print(f"{'examples':>9} {'generated':>9} {'invalid':>7} {'failing':>7}  test")
    for name, phases in tests:
        ran = sum(ok + bad for ok, bad, _inv in phases.values())
        invalid = sum(inv for _ok, _bad, inv in phases.values())
        failing = sum(bad for _ok, bad, _inv in phases.values())
        generated = sum(phases.get("generate", (0, 0, 0))[:2])
        total, failing_total = total + ran, failing_total + failing
        print(f"{ran:>9} {generated:>9} {invalid:>7} {failing:>7}  {name}")
    print(f"{len(tests)} fuzz tests, {total} examples in all, {failing_total} failing; pytest exit {proc.returncode}")
    if proc.returncode != 0:
        print(out[-6000:])
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
