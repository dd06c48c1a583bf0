"""Warm charrnn processes: `charrnn ARGS` forked from a process that has imported torch already.

A test that needs many real trainers (kill -9 at random moments, every signal that stops
training) pays for each exec'd `python -m charrnn_cli` the import of torch and of the
optimizer's torch._dynamo, ~2.5 s of CPU. Forked from a warm parent (one a pytest process,
started on first use) a trainer starts in milliseconds and is still a process of its own: its
own pid, signal dispositions, descriptors (pipes for stdout and stderr) and exit status. Only
its start-up differs from an exec'd charrnn's (the imports are done before the fork), so tests
of the start-up itself (a signal while charrnn starts, --help without torch) keep
`helpers.spawn`.

    parent (this pytest process) --socket--> zygote: imports, then forks a monitor per request
        monitor: forks the trainer, writes its pid, waits, writes its exit status
            trainer: stdio = the test's pipes, then charrnn's main(ARGS), then _exit
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from typing import IO

ZYGOTE = r"""
import json, os, resource, signal, socket, sys
import torch, torch._dynamo  # what a trainer imports (its optimizer's first step: dynamo)
import charrnn_cli.cli, charrnn_cli.training.train

def trainer(req, fds):
    # never returns: main()'s code ends the process through SystemExit as `python -m
    # charrnn_cli` ends (atexit, stdio flushed, threads joined); an exception in the set-up
    # ends it with its traceback
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    for fd in fds:
        os.close(fd)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    # what charrnn and torch read from the environment at import, read again from this one's
    charrnn_cli.cli._debug = os.environ.get("CHARRNN_DEBUG", "") not in ("", "0")
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    for signum in req["ignore"]:  # what `trap '' SIG` in a shell leaves to the program it runs
        signal.signal(signum, signal.SIG_IGN)
    for which, limit in req["limits"]:  # what `ulimit` in a shell leaves to it
        resource.setrlimit(which, (limit, limit))
    sys.argv = ["charrnn", *req["args"]]
    from charrnn_cli import console
    console.reset()
    sys.exit(charrnn_cli.cli.main(req["args"]))

sock = socket.socket(fileno=int(sys.argv[1]))
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the monitors
while True:
    msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 4)
    if not msg:
        break
    if os.fork() == 0:  # the monitor
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        pid = os.fork()
        if pid == 0:
            trainer(json.loads(msg), fds)
        for fd in fds[:3]:
            os.close(fd)
        os.write(fds[3], b"%d\n" % pid)
        _, status = os.waitpid(pid, 0)
        os.write(fds[3], b"%d\n" % os.waitstatus_to_exitcode(status))
        os._exit(0)
    for fd in fds:
        os.close(fd)
"""

_zygote: tuple[subprocess.Popen, socket.socket] | None = None
_lock = threading.Lock()


def _connection(env: dict[str, str]) -> socket.socket:
    """The zygote's socket, the zygote started on first use with the first request's `env`
    (never this process's os.environ, which a test may be changing in another thread)."""
    global _zygote
    with _lock:
        if _zygote is None or _zygote[0].poll() is not None:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            proc = subprocess.Popen(
                [sys.executable, "-c", ZYGOTE, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env=env,
                stdin=subprocess.DEVNULL,
            )
            theirs.close()
            _zygote = (proc, ours)
            atexit.register(_stop, proc, ours)
        return _zygote[1]


def _stop(proc: subprocess.Popen, sock: socket.socket) -> None:
    sock.close()  # the zygote reads an empty message and ends
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


class WarmProcess:
    """What the tests use of `subprocess.Popen` (text pipes for stdout and stderr), for a
    trainer forked by the zygote."""

    def __init__(
        self, args: list[str], env: dict[str, str], ignore: tuple[int, ...], limits: dict
    ) -> None:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        request = {"args": args, "env": env, "cwd": os.getcwd(), "ignore": list(ignore),
                   "limits": list(limits.items())}  # fmt: skip
        with open(os.devnull, "rb") as null:
            fds = [null.fileno(), out_w, err_w, status_w]
            socket.send_fds(_connection(env), [json.dumps(request).encode()], fds)
        for fd in (out_w, err_w, status_w):
            os.close(fd)
        self.stdout: IO[str] = open(out_r, encoding="utf-8")  # noqa: SIM115
        self.stderr: IO[str] = open(err_r, encoding="utf-8")  # noqa: SIM115
        self._status = status_r
        self._read = b""
        self.returncode: int | None = None
        line = self._line(timeout=60)
        if line is None:
            raise RuntimeError("the zygote did not start a process")
        self.pid = int(line)
        # signals go through a pidfd: once the trainer has ended (its monitor reaps it at
        # once), its pid may be another process's
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # ended already, or no pidfd here
            pass

    def _line(self, timeout: float | None) -> bytes | None:
        """The next line of the monitor's status pipe, or None if none came in `timeout`."""
        while b"\n" not in self._read:
            if not select.select([self._status], [], [], timeout)[0]:
                return None
            chunk = os.read(self._status, 64)
            if not chunk:
                raise RuntimeError(f"the monitor of a warm charrnn ended with {self._read!r}")
            self._read += chunk
        line, self._read = self._read.split(b"\n", 1)
        return line

    def poll(self) -> int | None:
        return self.wait(timeout=0, _raise=False)

    def wait(self, timeout: float | None = None, _raise: bool = True) -> int | None:
        if self.returncode is None:
            line = self._line(timeout)
            if line is None:
                if _raise:
                    raise subprocess.TimeoutExpired(["charrnn (warm)"], timeout or 0)
                return None
            self.returncode = int(line)
            os.close(self._status)
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """As Popen's: nothing once the process has ended."""
        if self.poll() is not None:
            return
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signum)
            else:
                os.kill(self.pid, signum)
        except ProcessLookupError:  # ended since poll()
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        """Read stdout and stderr to their ends, then wait for the exit status."""
        got: dict[str, str | None] = {"out": None, "err": None}

        def drain(name: str, stream: IO[str]) -> None:
            got[name] = stream.read()
            stream.close()

        readers = [
            threading.Thread(target=drain, args=(name, stream), daemon=True)
            for name, stream in (("out", self.stdout), ("err", self.stderr))
            if not stream.closed
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(timeout)
            if reader.is_alive():
                raise subprocess.TimeoutExpired(["charrnn (warm)"], timeout or 0)
        self.wait(timeout)
        return got["out"], got["err"]


def warm_spawn(
    *args: str,
    env: dict | None = None,
    base_env: dict | None = None,
    ignore: tuple = (),
    limits: dict | None = None,
) -> WarmProcess:
    """`charrnn ARGS` forked warm, as `helpers.spawn` would start it (the test's environment or
    `base_env`, updated with `env`); `ignore`: signals it starts with ignored, as under `trap`;
    `limits`: {resource.RLIMIT_*: bytes}, as under `ulimit`."""
    base = dict(os.environ) if base_env is None else base_env
    env = {**base, "PYTHONUNBUFFERED": "1", **(env or {})}
    return WarmProcess(list(args), env, ignore, limits or {})
