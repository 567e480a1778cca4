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
_EXAMPLES = re.compile(r"^\s*-\s*during generate phase.*?(\d+) passing examples?,\s*(\d+) failing", re.M)
_TEST = re.compile(r"^(tests/\S+::\S+):", re.M)


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
    tests = _TEST.findall(out)
    counts = [(int(ok), int(bad)) for ok, bad in _EXAMPLES.findall(out)]
    total = sum(ok + bad for ok, bad in counts)
    for name, (ok, bad) in zip(tests, counts):
        print(f"{ok + bad:>7} examples  {bad:>3} failing  {name}")
    print(f"{len(tests)} fuzz tests, {total} examples in all; pytest exit {proc.returncode}")
    if proc.returncode != 0:
        print(out[-6000:])
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
