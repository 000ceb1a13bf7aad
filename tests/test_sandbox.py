"""The code sandbox against the attacks a model-written program can try.

Each attack program prints what it managed; the tests assert that it ran (its sentinel is
there) and that it reached nothing. The learner-side targets (a listener, a secret in the
environment, files, a process to kill) are set up here, in the test process.
"""

from __future__ import annotations

import os
import resource
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from teachgym.envs.datagen.sandbox import Sandbox, run_programs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox isolates with Linux namespaces")


def _run(programs: list[str], **kwargs) -> list[str | None]:
    return Sandbox(**{"timeout_s": 5.0, **kwargs}).run(programs)


def _host_processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
            except OSError:
                pass
    return found


def test_the_learners_loopback_and_abstract_sockets_are_unreachable_by_any_route():
    tcp = socket.create_server(("127.0.0.1", 0))
    tcp.setblocking(False)
    port = tcp.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    uport = udp.getsockname()[1]
    name = b"\0teachgym-test-" + secrets.token_hex(4).encode()
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(name)
    unix.listen()
    unix.setblocking(False)
    attempt = "try:\n{body}\n    print('reached')\nexcept Exception:\n    print('blocked')"
    bodies = [
        f"    import socket\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)",
        f"    import _socket\n    s = _socket.socket()\n    s.settimeout(2)\n    s.connect(('127.0.0.1', {port}))",
        f"    import importlib, socket\n    importlib.reload(socket)\n    socket.create_connection(('localhost', {port}), timeout=2)",
        f"    import socket\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n    s.sendto(b'x', ('127.0.0.1', {uport}))",
        f"    import socket\n    s = socket.socket(socket.AF_UNIX)\n    s.connect({name!r})",
        "    import subprocess, sys\n    subprocess.run([sys.executable, '-c', "
        f"\"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)\"], check=True, timeout=3)",
        "    import socket\n    socket.getaddrinfo('pypi.org', 443)",
    ]
    out = _run([attempt.format(body=b) for b in bodies])
    assert out == ["blocked\n"] * len(bodies)
    with pytest.raises(BlockingIOError):
        tcp.accept()
    with pytest.raises(BlockingIOError):
        udp.recv(10)
    with pytest.raises(BlockingIOError):
        unix.accept()
    for s in (tcp, udp, unix):
        s.close()


def test_a_secret_in_the_learners_environment_cannot_be_read(monkeypatch):
    secret = "sk-" + secrets.token_hex(16)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    program = f"""
import os, glob
print('env', sorted(os.environ))
for path in ['/proc/{os.getpid()}/environ', '/proc/1/environ', '/proc/self/environ'] + glob.glob('/proc/*/environ'):
    try:
        print(path, open(path, 'rb').read())
    except OSError as err:
        print(path, 'denied', err.errno)
print('done')
"""
    out = _run([program])[0]
    assert out is not None and out.endswith("done\n")
    assert "env ['HOME', 'LANG', 'PATH']" in out
    assert secret not in out


def test_files_of_the_learner_cannot_be_read_written_or_deleted(tmp_path):
    victim = tmp_path / "results.csv"
    victim.write_text("precious")
    here = Path.cwd()
    program = f"""
import os
for label, action in [
    ('read', lambda: open({str(victim)!r}).read()),
    ('write', lambda: open({str(victim)!r}, 'w').write('lost')),
    ('delete', lambda: os.remove({str(victim)!r})),
    ('create', lambda: open({str(tmp_path / 'new.txt')!r}, 'w').write('x')),
    ('project', lambda: os.listdir({str(here)!r})),
    ('usr', lambda: open('/usr/teachgym-sandbox-test', 'w').write('x')),
    ('etc', lambda: open('/etc/ld.so.cache', 'a').write('x')),
    ('root', lambda: open('/program.py', 'w').write('x')),
    ('home', lambda: os.listdir('/home')),
]:
    try:
        action()
        print(label, 'done')
    except OSError:
        print(label, 'denied')
open('/tmp/scratch.txt', 'w').write('private temp is writable')
print(open('/tmp/scratch.txt').read())
"""
    out = _run([program])[0]
    assert out is not None
    assert all(line.endswith("denied") for line in out.splitlines()[:-1]), out
    assert out.splitlines()[-1] == "private temp is writable"
    assert victim.read_text() == "precious" and sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]
    assert not Path("/usr/teachgym-sandbox-test").exists()


def test_no_process_outside_can_be_signalled_and_the_supervisor_survives_kill_attempts():
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        program = f"""
import os, signal
for pid in ({target.pid}, {os.getpid()}, os.getppid(), 1, -1):
    try:
        os.kill(pid, signal.SIGKILL)
        print(pid, 'sent')
    except OSError:
        print(pid, 'denied')
print('alive')
"""
        # kill(-1) takes the program itself down; the rest of the batch still runs.
        out = _run([program, "print('next')"])
        assert out[1] == "next\n"
        time.sleep(0.2)
        assert target.poll() is None, "a process outside the sandbox was killed"
    finally:
        target.kill()
        target.wait()


def test_fork_bombs_are_bounded_and_leave_nothing_behind():
    marker = "tg-fork-" + secrets.token_hex(4)
    program = f"""
import os, time
n = 0
for _ in range(10_000):
    try:
        if os.fork() == 0:
            os.execv('/bin/sleep', ['sleep', '30', '{marker}']) if os.path.exists('/bin/sleep') else time.sleep(30)
        n += 1
    except OSError:
        break
print('forked', n)
"""
    t0 = time.monotonic()
    out = _run([program], nproc=16)[0]
    assert time.monotonic() - t0 < 10
    assert out is not None and out.startswith("forked ")
    assert int(out.split()[1]) < 16
    time.sleep(0.3)
    assert _host_processes_with(marker) == []


def test_detached_processes_die_with_the_sandbox_and_cannot_stall_it_by_holding_stdout():
    marker = "tg-detached-" + secrets.token_hex(4)
    program = f"""
import os, subprocess, sys
# a double-forked, new-session grandchild that keeps stdout open and outlives the program
subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)  # {marker}'], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        import time
        time.sleep(60)
    os._exit(0)
print('x')
"""
    t0 = time.monotonic()
    out = _run([program], timeout_s=20.0)[0]
    assert out == "x\n"
    assert time.monotonic() - t0 < 5, "a child holding stdout stalled the sandbox"
    time.sleep(0.3)
    assert _host_processes_with(marker) == []


def test_a_program_cannot_forge_the_results_of_others():
    forger = """
import json, os
fake = json.dumps({"ok": True, "out": "forged", "reason": ""}).encode()
for fd in range(0, 64):
    try:
        os.write(fd, fake + b'\\n')
    except OSError:
        pass
os._exit(0)
"""
    planter = "open('/tmp/answer', 'w').write('planted')\nprint('planted')"
    reader = "import os\nprint(os.path.exists('/tmp/answer'), os.listdir('/tmp'))"
    out = _run([forger, "print('genuine')", forger, "print(6 * 7)", planter, reader], workers=1)
    assert out[1] == "genuine\n" and out[3] == "42\n"
    assert out[4] == "planted\n" and out[5] == "False []\n"  # every program gets a /tmp of its own
    assert out[0] is not None and "forged" in out[0]  # its own output says what it wrote, nothing more
    assert out[0].count("forged") == 1


def test_huge_output_is_capped_without_bloating_the_learner():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    out = _run(["import sys\nfor _ in range(300):\n    sys.stdout.write('x' * (1 << 20))", "print('ok')"], max_output=10_000)
    assert out == [None, "ok\n"]
    assert time.monotonic() - t0 < 10
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024, f"the learner grew by {grown_kib} KiB"
    assert _run(["print('y' * 500)"], max_output=1000) == ["y" * 500 + "\n"]


def test_privileges_cannot_be_regained():
    program = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def attempt(label, fn):
    try:
        ok = fn()
        print(label, 'denied' if ok is False else 'done')
    except OSError:
        print(label, 'denied')
attempt('chroot', lambda: os.chroot('/tmp'))
attempt('mount', lambda: libc.mount(b'tmpfs', b'/usr', b'tmpfs', 0, None) == 0)
attempt('remount-rw', lambda: libc.mount(None, b'/usr', None, 32 | 4096, None) == 0)
attempt('ptrace-supervisor', lambda: libc.ptrace(16, 1, None, None) == 0)
attempt('setuid', lambda: os.setuid(12345))
def new_user_namespace():
    # A user namespace of its own brings capabilities there, but the mounts it sees stay locked read-only.
    if libc.unshare(0x10000000 | 0x00020000) != 0:
        return False
    libc.mount(None, b'/usr', None, 32 | 4096, None)
    open('/usr/teachgym-escape', 'w').write('x')
attempt('userns-remount', new_user_namespace)
"""
    out = _run([program])[0]
    assert out is not None and len(out.splitlines()) == 6, out
    assert all(line.endswith("denied") for line in out.splitlines()), out
    assert not Path("/usr/teachgym-escape").exists()


def test_time_memory_disk_and_exit_status_limits():
    programs = [
        "print(6 * 7)",
        "while True:\n    pass",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(30)",
        "x = bytearray(2 * 1024 ** 3)\nprint(len(x))",
        "try:\n    open('/tmp/big', 'wb').write(b'x' * (100 << 20))\n    print('wrote')\nexcept (OSError, MemoryError):\n    print('limited')",
        "raise ValueError('boom')",
        "import os\nos._exit(3)",
        "print('after')",
    ]
    t0 = time.monotonic()
    out = _run(programs, timeout_s=0.5, memory_mb=512)
    assert out == ["42\n", None, None, None, "limited\n", None, None, "after\n"]
    assert time.monotonic() - t0 < 15


def test_model_written_code_is_refused_where_user_namespaces_are_disabled():
    # A learner in a user namespace of its own whose namespace limit is 0: what a machine with
    # user namespaces disabled looks like to the sandbox.
    script = (
        "from teachgym.envs.datagen.sandbox import Sandbox, SandboxUnavailable\n"
        "try:\n    Sandbox().run(['print(1)', 'print(2)'])\nexcept SandboxUnavailable as err:\n    print('refused:', err)\n"
        "print('none:', Sandbox(isolation='none').run(['print(6 * 7)']))\n"
    )
    shell = f"echo 0 > /proc/sys/user/max_user_namespaces && exec {sys.executable} -c \"$0\""
    done = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c", shell, script],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert "refused: could not build the sandbox" in done.stdout, done.stdout + done.stderr
    assert "unshare:" in done.stdout and "isolation='none'" in done.stdout
    assert "none: ['42\\n']" in done.stdout


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="isolation"):
        Sandbox(isolation="chroot")
    with pytest.raises(ValueError, match="nproc"):
        Sandbox(nproc=2)
    with pytest.raises(ValueError, match="memory_mb"):
        Sandbox(memory_mb="lots")
    for bad in (0.5, True, "4", float("inf"), float("nan")):
        with pytest.raises(ValueError, match="retry_timeouts must be a number from 1"):
            Sandbox(retry_timeouts=bad)


def test_a_late_program_that_mostly_waited_is_run_again_and_one_that_computed_is_not(monkeypatch):
    """Sleeping stands for waiting for a core: past its deadline once, within the retry's. A loop
    (or forks, each under the CPU cap) computes through its deadline: no second run."""
    late = "import time\ntime.sleep(2)\nprint('done')"
    loop = "import os\nos.fork()\nwhile True:\n    pass"  # two processes, each under the cap
    assert _run([late, "print(1)"], timeout_s=0.5, retry_timeouts=8) == ["done\n", "1\n"]
    assert _run([late], timeout_s=0.5, retry_timeouts=1) == [None]
    # the supervisor measures what the program's processes used (a busy machine gives less)
    results, reasons, cpu = Sandbox(timeout_s=1.0)._run_once([loop, late], 1.0)
    assert results == [None, None] and reasons == ["timeout", "timeout"]
    assert cpu[1] < 0.2 and cpu[0] > 2 * cpu[1]
    # what is retried, from those measures: the late programs that used under half their time
    calls = []

    def measured(self, programs, timeout_s):
        calls.append((list(programs), timeout_s))
        n = len(programs)
        return [None] * n, ["timeout", "timeout", "exit status 1", "timeout"][:n], [0.2, 0.6, 0.0, 0.0][:n]

    monkeypatch.setattr(Sandbox, "_run_once", measured)
    Sandbox(timeout_s=1.0).run(["a", "b", "c", "d"])
    assert calls == [(["a", "b", "c", "d"], 1.0), (["a", "d"], 4.0)]


def test_a_program_cannot_end_the_batch_by_signalling_its_supervisor():
    """The supervisor is PID 1 of the program's namespace and runs as the same user."""
    attack = "import os, signal\nfor sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):\n    os.kill(1, sig)\nprint('sent')"
    assert _run([attack, "print(6 * 7)"]) == ["sent\n", "42\n"]
    # a program gets SIGINT as under `python`: KeyboardInterrupt, a failure of its own
    assert _run(["import os, signal\nos.kill(os.getpid(), signal.SIGINT)\nprint('survived')"]) == [None]


def test_isolation_none_is_explicit_and_keeps_the_resource_limits():
    out = run_programs(["print(6 * 7)", "while True:\n    pass", "import os\nprint(sorted(os.environ))", "print('z' * 50_000)"],
                       timeout_s=0.5, isolation="none")
    assert out == ["42\n", None, "['HOME', 'LANG', 'PATH']\n", None]
