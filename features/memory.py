"""A partition's memory given back to the machine when the partition is done with it.

A process that works on partitions (this one on the local engine, a worker process, a Dask
worker) reads tens of millions of rows, converts them, and lets them go. Two allocators keep what
is let go by default: Arrow's mimalloc pool holds the Parquet buffers freed during the pandas
conversion (memory numpy, which allocates through the C library, cannot reuse), and glibc keeps
the mid-sized blocks of a heap that grew. On a 50,000-customer partition the two together held
about 600 MiB above the partition's data at its peak (`make bench-engine`, `benchmarks/scale.py`).

`use_system_arrow_pool` (the CLI's first step, before Arrow loads: Arrow's C++ readers take
their pool from the environment once) sends Arrow's allocations to the C library, so both share
one heap; the worker processes and a LocalCluster's workers inherit it. `bound_process_memory`
(once per process, from the first partition read in it) has the C library serve blocks of
`MMAP_THRESHOLD` bytes and more from their own mappings, returned when freed; `release_memory`
(between a partition's stages) hands the heap's free tail back. None of them changes a value;
`ARROW_DEFAULT_MEMORY_POOL` set otherwise by the user is kept.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import os

log = logging.getLogger(__name__)

MMAP_THRESHOLD = 4 * 2**20  # bytes; glibc's default rises with use up to 32 MiB, and keeps what is below it
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h

ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"

_state = {"bound": False}


def use_system_arrow_pool() -> None:
    """Arrow's allocations through the C library from the moment Arrow loads (unless the user chose)."""
    os.environ.setdefault(ARROW_POOL_VARIABLE, "system")


@functools.cache
def _glibc():
    """The C library when it is glibc (it has `malloc_trim`), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def bound_process_memory() -> None:
    """Large blocks mapped on their own, Arrow's Python-level pool on the C library (where the
    environment asks for it, as `use_system_arrow_pool` does); once per process."""
    if _state["bound"]:
        return
    import pyarrow as pa

    if os.environ.get(ARROW_POOL_VARIABLE) == "system":
        pa.set_memory_pool(pa.system_memory_pool())
    libc = _glibc()
    if libc is not None and not libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        log.debug("mallopt(M_MMAP_THRESHOLD) refused; the C library keeps its own threshold")
    _state["bound"] = True


def release_memory(collect: bool = False) -> None:
    """The heaps' free pages returned to the machine (glibc's `malloc_trim`; a few milliseconds).

    With `collect`, Python's cycle collector runs first: frames caught in a reference cycle (a
    partition's tables can be) are freed only by it, and until its next full pass, which may
    come during the next partition, a long-lived worker holds two partitions at once."""
    if collect:
        gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
