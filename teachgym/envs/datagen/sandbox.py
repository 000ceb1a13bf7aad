"""Run untrusted Python programs in a subprocess with time, memory and no-network limits.

A batch of programs goes to one fresh ``python -I -S`` worker (one start-up per batch instead of
one per program) whose address space, CPU time and file sizes are capped with ``setrlimit``;
sockets are replaced by a function that raises before any program runs, and the worker runs in
an empty temporary directory with an empty environment. Each program gets its own wall-clock
alarm. If the worker dies anyway (memory, a C-level hang), the batch is re-run one program per
worker so that only the culprit fails. POSIX only (``resource``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence

_WORKER = r'''
import io, json, signal, socket, sys
def _blocked(*a, **k):
    raise OSError("network access is disabled in the teachgym sandbox")
for _n in ("socket", "create_connection", "getaddrinfo", "socketpair", "fromfd"):
    setattr(socket, _n, _blocked)
class _Timeout(BaseException):
    pass
def _alarm(signum, frame):
    raise _Timeout()
signal.signal(signal.SIGALRM, _alarm)
job = json.loads(sys.stdin.read())
results = []
real_stdout = sys.stdout
for source in job["programs"]:
    buf = io.StringIO()
    sys.stdout = buf
    ok = True
    signal.setitimer(signal.ITIMER_REAL, job["timeout"])
    try:
        exec(compile(source, "<program>", "exec"), {"__name__": "__main__"})
    except BaseException:
        ok = False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout = real_stdout
    results.append([ok, buf.getvalue()[: job["max_output"]]])
real_stdout.write(json.dumps(results))
'''


def _limits(memory_mb: int, cpu_s: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    return apply


def _run_worker(programs: Sequence[str], timeout_s: float, memory_mb: int, max_output: int) -> list[tuple[bool, str]] | None:
    """One worker for the whole batch; None if it died or overran its total time."""
    budget = timeout_s * len(programs) + 5.0
    job = json.dumps({"programs": list(programs), "timeout": timeout_s, "max_output": max_output})
    with tempfile.TemporaryDirectory(prefix="teachgym-sandbox-") as cwd:
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _WORKER],
                input=job, capture_output=True, text=True, timeout=budget, cwd=cwd,
                env={"PATH": os.defpath}, preexec_fn=_limits(memory_mb, int(budget) + 1),
            )
        except subprocess.TimeoutExpired:
            return None
    if proc.returncode != 0:
        return None
    try:
        return [(bool(ok), str(out)) for ok, out in json.loads(proc.stdout)]
    except (ValueError, TypeError):
        return None


def run_programs(
    programs: Sequence[str],
    timeout_s: float = 1.0,
    memory_mb: int = 512,
    max_output: int = 10_000,
    chunk: int = 200,
) -> list[str | None]:
    """Stdout of each program, or None where it raised, timed out or broke a limit.

    Parameters
    ----------
    programs
        Python sources.
    timeout_s
        Wall-clock seconds each program may run.
    memory_mb
        Address-space cap of the worker process.
    max_output
        Characters of stdout kept per program.
    chunk
        Programs per worker.
    """
    out: list[str | None] = []
    for lo in range(0, len(programs), chunk):
        batch = list(programs[lo : lo + chunk])
        results = _run_worker(batch, timeout_s, memory_mb, max_output)
        if results is None or len(results) != len(batch):
            # Something killed the worker: isolate each program so only the culprit fails.
            results = [(_run_worker([p], timeout_s, memory_mb, max_output) or [(False, "")])[0] for p in batch]
        out.extend(o if ok else None for ok, o in results)
    return out
