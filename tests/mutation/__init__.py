"""Guard mutation harness: each guard of the fetch/parse path switched off in turn.

A guard (the SSRF check, a byte cap, a deadline, robots, noai before the body, ...)
is named here with the function that implements it and the tests that must fail
when it is gone. ``tests/test_guard_mutations.py`` runs those tests in a subprocess
with the guard replaced by its "off" version (tests/mutation/plugin.py) and expects
them to fail: a guard test that still passes with its guard off tests nothing.

Each area keeps its table in ``tests/mutation/guards_<area>.py`` as ``GUARDS``.
"""
