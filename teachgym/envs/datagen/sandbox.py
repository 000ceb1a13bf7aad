"""Run untrusted Python programs (model-written code) isolated from the learner and each other.

Each program runs in a process of its own inside fresh Linux namespaces (user, mount, PID,
network, IPC and UTS, made with ``unshare(2)`` by the stdlib-only worker
``_sandbox_worker.py``, which forks one supervisor per program: no external tool is needed),
under that supervisor as the namespace's PID 1:

* **filesystem** — a new root on a size-capped tmpfs that holds only read-only bind mounts of
  the system directories (``/usr``, ``/lib*``, ``/bin``), the Python installation and a few
  ``/etc`` files the dynamic linker needs, plus ``/dev/null``-style devices; a private writable
  ``/tmp`` (tmpfs, ``tmp_mb``) is the working directory. Home directories, the project, the
  learner's files and ``/proc`` are simply not there.
* **network** — a new network namespace: no interface but a loopback that is down, so neither
  other machines nor the learner's ``127.0.0.1`` (nor its abstract Unix sockets) are reachable.
* **processes** — a new PID namespace: the learner and every other host process are invisible
  and cannot be signalled; when the supervisor ends, the kernel kills whatever the program left
  behind (detached children included). ``RLIMIT_NPROC`` bounds forks.
* **user** — the namespace's root is mapped to ``nobody`` when the learner is root (the kernel
  exempts host root from ``RLIMIT_NPROC``), to the learner's own user otherwise.
* **privileges** — the program (a fork of the supervisor's interpreter) runs with every
  capability cleared, an empty bounding set and ``no_new_privs``, so it cannot undo the
  read-only mounts or attach to the supervisor.
* **resources** — ``RLIMIT_AS`` (``memory_mb``), ``RLIMIT_CPU``, ``RLIMIT_FSIZE``, no core
  files, a wall-clock deadline after which the whole namespace is killed, and stdout read with
  a byte cap (a program that prints more fails).
* **environment** — only ``PATH``, ``HOME`` and ``LANG``.
* **results** — the supervisor reads the program's stdout from a pipe and reports on its own
  stdout, which the program never holds: a program can only speak for itself.

Where the machine cannot create these namespaces (not Linux, user namespaces disabled), :class:`Sandbox` refuses with :class:`SandboxUnavailable`, saying what is missing; a
user who trusts the code may pass ``isolation="none"`` to run each program in a plain
subprocess with the same resource limits and nothing else.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ISOLATIONS = ("namespaces", "none")


class SandboxUnavailable(RuntimeError):
    """The machine cannot isolate model-written code; the message says what is missing."""


class Sandbox:
    """Run Python programs one process each, isolated (see the module docstring).

    Parameters
    ----------
    timeout_s
        Wall-clock seconds each program may run (its CPU time is capped at ``int`` of it + 1).
    retry_timeouts
        A program still running at ``timeout_s`` that used less than half of that in CPU time (its
        processes together) is run once more, with ``retry_timeouts`` times the wall-clock time and
        the same CPU cap, before it counts as failed: on a busy machine a correct program can wait
        longer than ``timeout_s`` for a core. A program that computed through its deadline is not
        retried. ``1`` turns the retry off.
    memory_mb
        Address-space cap of each program (``RLIMIT_AS``).
    max_output
        Bytes of stdout a program may print; more is a failure (and the program is killed).
    tmp_mb
        Size of the program's private writable ``/tmp`` (and of the tmpfs that holds its root).
    fsize_mb
        Largest file a program may write (``RLIMIT_FSIZE``).
    nproc
        Most processes a sandbox may hold at once, its two supervisor processes included
        (``RLIMIT_NPROC``, counted in its own user namespace).
    workers
        Programs run at the same time (each in its own sandbox); ``None``: one per core, at most 4.
    isolation
        ``"namespaces"`` (refuses with :class:`SandboxUnavailable` where the machine cannot
        provide them) or ``"none"``: resource limits only, for code you trust.
    startup_s
        Extra seconds allowed for building a sandbox before it is killed from outside.
    sandbox_user
        Host user id the sandbox's root maps to when the learner runs as root (``nobody``); an
        unprivileged learner can only map its own id.
    """

    def __init__(
        self,
        timeout_s: float = 1.0,
        memory_mb: int = 512,
        max_output: int = 10_000,
        tmp_mb: int = 16,
        fsize_mb: int = 8,
        nproc: int = 16,
        workers: int | None = None,
        isolation: str = "namespaces",
        startup_s: float = 10.0,
        sandbox_user: int = 65534,
        retry_timeouts: float = 4.0,
    ) -> None:
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
        if not timeout_s > 0 or not startup_s > 0:
            raise ValueError(f"expected timeout_s > 0 and startup_s > 0, got {timeout_s}, {startup_s}")
        if (isinstance(retry_timeouts, bool) or not isinstance(retry_timeouts, (int, float))
                or not 1 <= retry_timeouts <= 100):
            raise ValueError(f"retry_timeouts must be a number from 1 (no retry) to 100, got {retry_timeouts!r}")
        for name, value in (("memory_mb", memory_mb), ("max_output", max_output), ("tmp_mb", tmp_mb),
                            ("fsize_mb", fsize_mb), ("nproc", nproc), ("sandbox_user", sandbox_user)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if nproc < 3:
            raise ValueError(f"nproc must be at least 3 (two supervisor processes and the program), got {nproc}")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
        self.timeout_s, self.memory_mb, self.max_output = float(timeout_s), memory_mb, max_output
        self.retry_timeouts = float(retry_timeouts)
        self.tmp_mb, self.fsize_mb, self.nproc = tmp_mb, fsize_mb, nproc
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.isolation, self.startup_s, self.sandbox_user = isolation, float(startup_s), sandbox_user
        self.python = os.path.realpath(sys.executable)

    # -- what the sandbox sees ------------------------------------------------------------
    def binds(self) -> list[str]:
        """Host paths mounted read-only into the sandbox (symlinks are copied as links)."""
        prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix, os.path.dirname(self.python))}
        paths = ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/libx32", "/sbin",
                 "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime",
                 "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", *sorted(prefixes)]
        out: list[str] = []
        for p in paths:
            if os.path.lexists(p) and not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
                out.append(p)
        return out

    def _root_mountpoint(self, binds: Sequence[str]) -> str:
        # Any existing directory outside every bind source will do: the tmpfs hides it only in the
        # sandbox's own mount namespace.
        for cand in ("/tmp", "/mnt", "/var/tmp", "/run", "/media", "/srv"):
            if os.path.isdir(cand) and not os.path.islink(cand) and not any(
                    b == cand or b.startswith(cand + "/") or cand.startswith(b.rstrip("/") + "/") for b in binds):
                return cand
        raise SandboxUnavailable("no directory to build the sandbox's root on (tried /tmp, /mnt, /var/tmp, /run)")

    # -- running --------------------------------------------------------------------------
    def _job(self, programs: list[str], timeout_s: float) -> bytes:
        job: dict[str, Any] = {
            "programs": programs, "timeout": timeout_s, "cpu_s": int(self.timeout_s) + 1, "startup": self.startup_s,
            "max_output": self.max_output, "memory_mb": self.memory_mb, "tmp_mb": self.tmp_mb,
            "fsize_mb": self.fsize_mb, "nproc": self.nproc, "workers": self.workers,
            "sandbox_user": self.sandbox_user, "isolated": self.isolation == "namespaces",
        }
        if job["isolated"]:
            binds = self.binds()
            job.update(binds=binds, root=self._root_mountpoint(binds))
        return json.dumps(job).encode()

    @staticmethod
    def _unavailable(what: str) -> SandboxUnavailable:
        return SandboxUnavailable(
            f"could not build the sandbox for model-written code ({what}). It needs Linux with user "
            "namespaces enabled (user.max_user_namespaces > 0; on Ubuntu also "
            "kernel.apparmor_restrict_unprivileged_userns=0, or run as root). Pass isolation='none' to "
            "run the code with resource limits only (only for code you trust).")

    def run(self, programs: Sequence[str]) -> list[str | None]:
        """Stdout of each program, or None where it failed (raised, exit status ≠ 0, timed out,
        printed more than ``max_output`` bytes, broke a limit).

        Raises
        ------
        SandboxUnavailable
            Where ``isolation="namespaces"`` and the machine cannot provide them.
        """
        programs = [str(p) for p in programs]
        if not programs:
            return []
        if self.isolation == "namespaces" and not sys.platform.startswith("linux"):
            raise self._unavailable(f"this is {sys.platform}, not Linux")
        results, reasons, cpu = self._run_once(programs, self.timeout_s)
        late = [i for i, reason in enumerate(reasons) if reason == "timeout" and cpu[i] < self.timeout_s / 2]
        if late and self.retry_timeouts > 1:
            again, _, _ = self._run_once([programs[i] for i in late], self.timeout_s * self.retry_timeouts)
            for i, out in zip(late, again):
                results[i] = out
        return results

    def _run_once(self, programs: list[str], timeout_s: float) -> tuple[list[str | None], list[str], list[float]]:
        """Each program's stdout (None where it failed), why it failed (``""`` where it did not)
        and the CPU seconds its processes used (0 where its supervisor did not say)."""
        worker = Path(__file__).with_name("_sandbox_worker.py")
        proc = subprocess.Popen([self.python, "-I", "-S", str(worker)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/",
                                env={"PATH": os.defpath}, start_new_session=True, close_fds=True)
        rounds = -(-len(programs) // self.workers)
        try:
            out, err = proc.communicate(self._job(programs, timeout_s), timeout=rounds * (timeout_s + self.startup_s) + self.startup_s)
        except subprocess.TimeoutExpired:
            # The worker's group holds every supervisor; each namespace's PID 1 dies with its parent.
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        results: list[str | None] = [None] * len(programs)
        reasons = ["timeout"] * len(programs)  # what the worker never reported was cut off by the deadline
        cpu = [0.0] * len(programs)
        for line in out.decode("utf-8", errors="replace").splitlines():
            try:
                item = json.loads(line)
                i = int(item["i"])
            except (ValueError, KeyError, TypeError):
                continue
            if "setup_error" in item:
                raise self._unavailable(str(item["setup_error"]))
            if 0 <= i < len(programs):
                reasons[i] = "" if item.get("ok") else str(item.get("reason", "failed"))
                used = item.get("cpu_s", 0.0)
                cpu[i] = float(used) if isinstance(used, (int, float)) and math.isfinite(used) else 0.0
                if item.get("ok"):
                    results[i] = str(item.get("out", ""))
        if proc.returncode not in (0, -signal.SIGKILL):
            raise self._unavailable(f"the sandbox worker failed: {err.decode('utf-8', errors='replace').strip()[-500:]}")
        return results, reasons, cpu


def run_programs(
    programs: Sequence[str],
    timeout_s: float = 1.0,
    memory_mb: int = 512,
    max_output: int = 10_000,
    isolation: str = "namespaces",
) -> list[str | None]:
    """Stdout of each program, or None where it failed; :meth:`Sandbox.run` with these settings."""
    return Sandbox(timeout_s=timeout_s, memory_mb=memory_mb, max_output=max_output, isolation=isolation).run(programs)
