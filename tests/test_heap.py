"""core.heap: a compiled function's large temporaries stop page-faulting once the heap keeps them."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from core import cli, heap
from tests.conftest import ROOT

# A jitted function with a 96 MB temporary (more than a thread arena's 64 MB heap): the median of its
# page faults per call once warm, in a fresh process, with or without keep_large_allocations first. Kept,
# the heap grows over the first calls (a few regions of the temporary's size), then stops faulting.
PROGRAM = """
import json, resource, statistics, sys
if sys.argv[1] == "keep":
    from core.heap import keep_large_allocations
    assert keep_large_allocations()
import jax, jax.numpy as jnp
f = jax.jit(lambda x: (lambda y: y.sum() + y.max())(jax.lax.optimization_barrier(x * 2.0)))
x = jnp.ones(24 * 2**20, jnp.float32)
faults = []
for _ in range(40):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(statistics.median(faults[20:])))
"""


def median_faults_per_call(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="keep_large_allocations sets glibc's allocator only")
def test_kept_temporaries_do_not_fault_again():
    assert median_faults_per_call("default") > 20_000  # the temporary's 24,576 pages, mapped afresh at every call
    assert median_faults_per_call("keep") < 100


def test_bnn_keeps_large_allocations_before_anything_else(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "keep_large_allocations", lambda: calls.append("heap"))
    monkeypatch.setattr(cli, "build_parser", lambda build=cli.build_parser: calls.append("parser") or build())
    monkeypatch.setattr(cli, "_run", lambda parser, args: calls.append(args.command) or 0)
    assert cli.main(["list"]) == 0
    assert calls == ["heap", "parser", "list"]
