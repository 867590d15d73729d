"""The process's heap: large temporaries stay mapped from one training step to the next (glibc).

XLA's CPU client allocates a compiled step's temporaries afresh at every call, with
``posix_memalign``, from its worker threads: 122 MB a step for the CNN, in blocks of up to 157 MB.
glibc gives each thread an arena of its own, whose heaps hold at most 64 MB, so every such block is a
new ``mmap``, and freeing it unmaps it. The next step touches new pages: the CNN's step took 30,000
page faults, each about 3 microseconds on the 2-core VM of benchmarks/README.md (mapping, touching and
unmapping 122 MB took 93 ms there; writing it once mapped, 6 ms).

:func:`keep_large_allocations` makes every thread allocate from the one main heap, never by
``mmap``, and lets that heap keep what is freed. The CNN's step then faults no more after the first
steps and ran at 14.2 instead of 8.9 it/s, the MLP's at 30.6 instead of 27.8. The cost: the process
keeps its peak heap (the CNN's training worker peaked at 1,964 MiB of memory instead of 1,612 MiB),
and the threads share one arena's lock, which the steps did not show.

It holds only for threads that allocate for the first time after it: ``bnn`` calls it first thing.
A program that trains through the API calls it before it uses JAX. Nothing here imports JAX.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["keep_large_allocations"]

# mallopt(3) parameters, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_KEEP_ALL = 2**31 - 1  # an int's largest value: freed memory at the heap's top is never given back


def keep_large_allocations() -> bool:
    """Serve every later thread from the main heap, never by ``mmap``, and keep freed memory mapped.

    Returns True where set (glibc), False where the C library is another (macOS, musl), whose
    allocator is left as it is.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc's own symbol: musl's mallopt does nothing
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _KEEP_ALL))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)
