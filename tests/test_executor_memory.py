"""The local executor's allocator settings: a large block freed after a batch goes back to the system.

glibc raises its mmap threshold to the size of each large block freed (mallopt(3)), after which
blocks of that size come from malloc's heaps and their holes stay resident; `bounded_memory`
fixes the threshold. Each check runs in a fresh interpreter, as its own process would, and reads
glibc's own count of mapped bytes (mallinfo2's `hblkhd`).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = """
import ctypes, sys
from genval.executors.local import bounded_memory

libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
if sys.argv[1] == "bounded":
    bounded_memory()
libc.free(libc.malloc(24 << 20))  # a batch's large block, freed: left alone, glibc's threshold rises to 24 MiB
before = libc.mallinfo2().hblkhd
block = libc.malloc(12 << 20)
print(libc.mallinfo2().hblkhd - before)
"""


def mapped_bytes_of_a_12mib_block(mode: str, **env) -> int:
    """Gives how many bytes glibc mapped for a 12 MiB block asked after a 24 MiB one was freed, in a fresh process."""
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def glibc_version() -> tuple[int, ...]:
    """Gives glibc's version, or () on another C library."""
    try:
        name, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
    except (ValueError, OSError, AttributeError):  # not a POSIX system that names its C library
        return ()
    return tuple(int(part) for part in version.split(".")[:2]) if name == "glibc" else ()


glibc = pytest.mark.skipif(glibc_version() < (2, 33), reason="glibc's malloc only (mallinfo2: 2.33 on)")


@glibc
def test_after_bounded_memory_a_large_block_is_its_own_mapping():
    assert mapped_bytes_of_a_12mib_block("plain") == 0  # glibc's default: the raised threshold puts it in the heap
    assert mapped_bytes_of_a_12mib_block("bounded") >= 12 << 20


@glibc
def test_a_users_own_mmap_threshold_wins():
    assert mapped_bytes_of_a_12mib_block("bounded", MALLOC_MMAP_THRESHOLD_=str(16 << 20)) == 0
