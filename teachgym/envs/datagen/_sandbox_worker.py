"""The sandbox's worker: ``python -I -S _sandbox_worker.py``, started by
:class:`teachgym.envs.datagen.sandbox.Sandbox` once per batch. Standard library only.

It reads one batch (JSON) on stdin and forks, for each program (``workers`` at a time), a
supervisor that enters new namespaces, builds the root, forks the program and watches it; each
supervisor reports one JSON line on a pipe of its own, and the worker writes one line per program
to stdout: ``{"i", "ok", "out", "reason"}``, or ``{"i", "setup_error"}`` where no sandbox could
be built. Forking (not one Python start-up per program) keeps a sandbox to a few milliseconds.
"""

import collections
import ctypes
import json
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time

LIBC = ctypes.CDLL(None, use_errno=True)
# user | mount | network | IPC | UTS | PID namespaces
CLONE_FLAGS = 0x10000000 | 0x00020000 | 0x40000000 | 0x08000000 | 0x04000000 | 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
# statvfs flag -> mount flag: a locked flag must be kept when a bind mount is made read-only
KEPT_FLAGS = ((2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC), (1024, 1024), (2048, 2048), (4096, 1 << 21))
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 38, 47


class SetupError(Exception):
    """No sandbox could be built (the learner refuses to run the program without one)."""


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")


def _mount(src, dst, fstype, flags, data=None):
    def enc(s):
        return None if s is None else s.encode()

    _check(LIBC.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), "mount " + dst)


def _enter(job, ready_w, go_r):
    """New namespaces, then become their root (mapped by the worker to an unprivileged host user)
    and fork PID 1 of the new PID namespace; returns the bind handles in PID 1."""
    _check(LIBC.unshare(CLONE_FLAGS), "unshare")
    os.write(ready_w, b"r")
    os.close(ready_w)
    if os.read(go_r, 1) != b"g":
        os._exit(0)  # the worker could not map us and reports why
    os.close(go_r)
    # Handles on what we bind, taken while we are still the learner's user (who may read a Python
    # installation in a private home) and already in the new mount namespace.
    handles = {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for p in job["binds"] if not os.path.islink(p)}
    os.setresgid(0, 0, 0)
    try:
        os.setgroups([])
    except OSError:
        pass  # setgroups denied (an unprivileged learner): it keeps its own groups
    os.setresuid(0, 0, 0)
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        os._exit(0)
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # killed from outside, the namespace dies
    if os.getppid() != 0:  # our parent is outside the namespace; if it is gone already, so are we
        os._exit(0)
    return handles


def _build_root(job, source, handles):
    root = job["root"]
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={job['tmp_mb']}m,mode=0755")
    for path in job["binds"]:
        target = root + path
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if path not in handles:
            os.symlink(os.readlink(path), target)
            continue
        handle = f"/proc/self/fd/{handles[path]}"
        if os.path.isdir(handle):
            os.makedirs(target, exist_ok=True)
        else:
            open(target, "w").close()
        _mount(handle, target, None, MS_BIND)
        os.close(handles[path])
        st, flags = os.statvfs(target).f_flag, MS_REMOUNT | MS_BIND | MS_RDONLY
        for bit, ms in KEPT_FLAGS:
            if st & bit:
                flags |= ms
        _mount(None, target, None, flags)
    with open(root + "/program.py", "w", encoding="utf-8") as f:
        f.write(source)
    os.mkdir(root + "/tmp")
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={job['tmp_mb']}m,mode=1777")
    _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot(root)
    os.chdir("/tmp")
    return "/program.py"


def _drop_privileges():
    LIBC.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    for cap in range(64):
        if LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:  # up to the kernel's last capability
            break
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    if LIBC.capset(header, (ctypes.c_uint32 * 6)()) != 0 or LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        os._exit(126)  # capabilities cleared and no way to regain them, or the program does not run


def _limit(job):
    for what, value in ((resource.RLIMIT_AS, job["memory_mb"] << 20), (resource.RLIMIT_CPU, job["cpu_s"]),
                        (resource.RLIMIT_CORE, 0), (resource.RLIMIT_FSIZE, job["fsize_mb"] << 20),
                        (resource.RLIMIT_NPROC, job["nproc"]), (resource.RLIMIT_NOFILE, 64)):
        resource.setrlimit(what, (value, value))


def _exec_program(path, home):
    """Run the program in this forked interpreter as ``python path`` would; never returns."""
    import builtins

    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 2)
    sys.stdin, sys.stdout, sys.stderr = (open(fd, mode, encoding="utf-8", errors="replace", closefd=False)
                                         for fd, mode in ((0, "r"), (1, "w"), (2, "w")))
    os.environ.clear()
    os.environ.update(PATH="/usr/bin:/bin", HOME=home, LANG="C.UTF-8")
    # as `python -I -S path`: the program's folder, then the standard library (not the worker's folder)
    sys.argv, sys.path[:] = [path], [os.path.dirname(path), *sys.path[1:]]
    code = 0
    try:
        with open(path, encoding="utf-8") as f:
            exec(compile(f.read(), path, "exec"), {"__name__": "__main__", "__builtins__": builtins, "__file__": path})
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        code = 1  # (stderr is /dev/null: no traceback to print)
    try:
        sys.stdout.flush()
    except BaseException:
        code = code or 1
    os._exit(code & 0xFF)


def _watch(job, program, isolated, home):
    """Fork the program, read its stdout (capped) until it exits or the deadline; kill the rest."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a program as under `python`
            os.dup2(write_end, 1)
            os.closerange(3, 4096)  # nothing of the supervisor's, least of all its result channel
            _limit(job)
            if isolated:
                _drop_privileges()
            _exec_program(program, home)
        finally:
            os._exit(127)
    os.close(write_end)
    try:
        waiter = os.pidfd_open(pid)
    except (AttributeError, OSError):
        waiter = None  # polled below instead
    deadline, cap = time.monotonic() + job["timeout"], job["max_output"]
    buf, status, reason = bytearray(), None, ""
    while status is None:
        left = deadline - time.monotonic()
        if left <= 0:
            reason = "timeout"
            break
        watch = [read_end] + ([waiter] if waiter is not None else [])
        ready, _, _ = select.select(watch, [], [], left if waiter is not None else min(left, 0.02))
        if read_end in ready:
            chunk = os.read(read_end, 65536)
            if chunk:
                buf += chunk
                if len(buf) > cap:
                    reason = f"output over {cap} bytes"
                    break
            elif waiter is None:
                time.sleep(0.002)
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
    if status is not None and not reason:
        # The program has exited: keep what it wrote, but never wait for a child that holds the pipe.
        os.set_blocking(read_end, False)
        try:
            while len(buf) <= cap:
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                buf += chunk
        except BlockingIOError:
            pass
        if len(buf) > cap:
            reason = f"output over {cap} bytes"
    # Kill everything the program started: the whole namespace (we are its PID 1) or our group.
    try:
        os.kill(-1, signal.SIGKILL) if isolated else os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    if status is None:
        _, status = os.waitpid(pid, 0)
    try:
        while os.waitpid(-1, 0)[0] > 0:
            pass
    except ChildProcessError:
        pass
    if not reason and not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        reason = f"exit status {os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)}"
    # CPU time of the program and of every process of it we reaped (all of them in a namespace,
    # whose orphans come to us): the learner retries only a late program that mostly waited.
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"ok": not reason, "out": bytes(buf[:cap]).decode("utf-8", errors="replace"), "reason": reason,
            "cpu_s": used.ru_utime + used.ru_stime}


def _supervise(job, source, result_w, ready_w, go_r):
    """One program's supervisor (a child of the worker); writes its result line to ``result_w``."""
    # The program may signal us (PID 1 of its namespace, same user): the kernel delivers only the
    # signals PID 1 handles, and Python handles SIGINT. Ignored, it cannot end the batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # the worker's stdout is the learner's channel: not ours to write
    workdir = None
    try:
        try:
            if job["isolated"]:
                program = _build_root(job, source, _enter(job, ready_w, go_r))
                home = "/tmp"
            else:
                os.setpgid(0, 0)
                workdir = home = tempfile.mkdtemp(prefix="tg-sbx-")
                os.chdir(workdir)
                program = os.path.join(workdir, "program.py")
                with open(program, "w", encoding="utf-8") as f:
                    f.write(source)
        except (SetupError, OSError) as err:
            result = {"setup_error": str(err)}
        else:
            try:
                result = _watch(job, program, job["isolated"], home)
            except BaseException as err:  # once the program runs, what breaks is its failure, not the sandbox's
                result = {"ok": False, "out": "", "reason": f"supervisor: {type(err).__name__}"}
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    os.write(result_w, (json.dumps(result) + "\n").encode())


def _map_user(job, pid):
    """Map the sandbox's root to an unprivileged host user (only a root learner may choose which)."""
    uid, gid = (job["sandbox_user"],) * 2 if os.geteuid() == 0 else (os.geteuid(), os.getegid())
    if os.geteuid() != 0:
        with open(f"/proc/{pid}/setgroups", "w") as f:
            f.write("deny")  # the kernel's condition for an unprivileged gid map
    for name, value in (("uid_map", uid), ("gid_map", gid)):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(f"0 {value} 1")


def _start(job, source):
    """Fork one program's supervisor; returns (result pipe, pid)."""
    result_r, result_w = os.pipe()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (result_r, ready_r, go_w):
                os.close(fd)
            LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            try:
                _supervise(job, source, result_w, ready_w, go_r)
            except BaseException as err:  # a supervisor never takes the worker's loop down
                os.write(result_w, (json.dumps({"setup_error": f"{type(err).__name__}: {err}"}) + "\n").encode())
        finally:
            os._exit(0)
    for fd in (result_w, ready_w, go_r):
        os.close(fd)
    try:
        if job["isolated"]:
            ready, _, _ = select.select([ready_r], [], [], job["startup"])
            if ready and os.read(ready_r, 1) == b"r":
                try:
                    _map_user(job, pid)
                    os.write(go_w, b"g")
                except OSError as err:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    os.close(result_r)
                    raise SetupError(f"writing the user namespace's id maps: {err}") from None
    finally:
        os.close(ready_r)
        os.close(go_w)
    return result_r, pid


def _finish(pid, isolated, buf, timed_out):
    try:
        os.killpg(pid, signal.SIGKILL) if not isolated and timed_out else os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    os.waitpid(pid, 0)
    if timed_out:
        return {"ok": False, "out": "", "reason": "timeout"}
    try:
        result = json.loads(bytes(buf).decode("utf-8", errors="replace").strip().splitlines()[-1])
        if isinstance(result, dict):
            return result
    except (ValueError, IndexError):
        pass
    return {"ok": False, "out": "", "reason": "the supervisor died"}


def main():
    job = json.loads(sys.stdin.buffer.read())
    out = sys.stdout
    pending = collections.deque(enumerate(job["programs"]))
    running = {}  # result fd -> [index, pid, deadline, bytes read]
    limit = 8 * job["max_output"] + 4096  # a result line: the output JSON-escaped, and its fields
    while pending or running:
        while pending and len(running) < job["workers"]:
            i, source = pending.popleft()
            try:
                fd, pid = _start(job, source)
            except SetupError as err:
                out.write(json.dumps({"i": i, "setup_error": str(err)}) + "\n")
                continue
            running[fd] = [i, pid, time.monotonic() + job["timeout"] + job["startup"], bytearray()]
        if not running:
            continue
        wait = max(0.0, min(entry[2] for entry in running.values()) - time.monotonic())
        ready, _, _ = select.select(list(running), [], [], wait)
        for fd in ready:
            entry = running[fd]
            chunk = os.read(fd, 65536)
            if chunk and len(entry[3]) <= limit:
                entry[3] += chunk
                continue
            del running[fd]
            os.close(fd)
            result = _finish(entry[1], job["isolated"], entry[3], False)
            out.write(json.dumps({"i": entry[0], **result}) + "\n")
        for fd, entry in list(running.items()):
            if time.monotonic() > entry[2]:
                del running[fd]
                os.close(fd)
                out.write(json.dumps({"i": entry[0], **_finish(entry[1], job["isolated"], b"", True)}) + "\n")
        out.flush()
    out.flush()


if __name__ == "__main__":
    main()
