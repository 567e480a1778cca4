"""pipeline/malloc_tuning.py: glibc settings applied once, the user's own kept, memory returned."""

import json
import os
import subprocess
import sys

import pytest

from pipeline.malloc_tuning import OPT_OUT, SETTINGS, _glibc, malloc_tuned, tune_malloc

glibc_only = pytest.mark.skipif(_glibc() is None, reason="glibc malloc settings (Linux only)")

# A child process frees 200 blocks of 1 MB that came from the heap (one large free first, as a
# shuffle does, raises glibc's default mmap threshold), each pinned between small live blocks;
# it prints how much glibc then holds freed but not returned (mallinfo2 fordblks, MB).
HELD_AFTER_FREE = r"""
import ctypes, json, sys
sys.path.insert(0, sys.argv[1])
from pipeline.malloc_tuning import tune_malloc
applied = tune_malloc()
class MI(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6"); libc.mallinfo2.restype = MI
first = bytearray(4 << 20); del first
big, pins = [], []
for i in range(200):
    big.append(bytearray(1 << 20))
    pins.append(bytearray(600))
del big
print(json.dumps({"held_mb": libc.mallinfo2().fordblks / 2**20, "applied": applied}))
"""


def held_after_free(opt_out: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if opt_out:
        env[OPT_OUT] = "0"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", HELD_AFTER_FREE, root], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


@glibc_only
def test_freed_blocks_go_back_to_the_os():
    tuned, default = held_after_free(opt_out=False), held_after_free(opt_out=True)
    assert tuned["applied"] and not default["applied"]
    assert default["held_mb"] > 150  # the guard off: the freed blocks stay in the heap
    assert tuned["held_mb"] < 20


@glibc_only
def test_settings_reach_worker_processes_through_the_environment():
    environ = {}
    applied = tune_malloc(environ)
    assert applied == {name: value for name, _param, value in SETTINGS}
    assert environ == {name: str(value) for name, _param, value in SETTINGS}


@glibc_only
def test_a_setting_the_user_exported_is_left_alone():
    environ = {"MALLOC_ARENA_MAX": "8"}
    applied = tune_malloc(environ)
    assert "MALLOC_ARENA_MAX" not in applied and environ["MALLOC_ARENA_MAX"] == "8"
    assert "MALLOC_MMAP_THRESHOLD_" in applied


def test_opt_out_changes_nothing():
    environ = {OPT_OUT: "0"}
    assert tune_malloc(environ) == {} and environ == {OPT_OUT: "0"}


@glibc_only
def test_the_settings_last_only_for_the_block():
    environ = {"PATH": "/bin"}
    with malloc_tuned(environ=environ) as applied:
        assert applied and all(environ[name] == str(value) for name, value in applied.items())
    assert environ == {"PATH": "/bin"}  # later child processes (the trainer's) get glibc's defaults
    with malloc_tuned(enabled=False, environ=environ) as applied:
        assert applied == {} and environ == {"PATH": "/bin"}
