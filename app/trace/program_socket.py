"""The local socket through which `procscope trace` hands a program's events to a server.

Runs in the server, on its event loop (the listener and one task per traced program), and
`find_server` / `runtime_dir` in `procscope trace`. The web API never accepts code, a path
or a command; a run of kind `program` is created only here, by a process of the same user
on the same machine:

    procscope trace ──connect──► <runtime dir>/server-<pid>.sock   (0600 in a 0700 dir;
         │                         the peer's uid is checked with SO_PEERCRED)
         │ {"op": "trace", argv, cwd, command, source}
         │ ◄── {"run", "page"} + the write end of the run's pipe (SCM_RIGHTS)
         │ starts the program (it waits at its gate) ─► {"pid"}
         │ ◄── {"go": true}  (the server follows the pid first: switch recorder, sampler)
         │ ... the program's processes write frames into the pipe, read by the relay ...
         │ the program's main has exited ─► {"exit": code}
         ▼
    run.end once the pipe is at EOF and the main's exit code is known

Discovery: each server writes `server-<pid>.json` (0600: pid, socket, url) beside its
socket in the user's runtime directory, `$XDG_RUNTIME_DIR/procscope`, else
`/tmp/procscope-<uid>` (0700, refused if it is not ours or others may enter it);
`PROCSCOPE_RUNTIME_DIR` overrides both (tests, or a server of one's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
from pathlib import Path
from typing import Any, Protocol

from procscope.pipe.redaction import redact_argv, redact_text

log = logging.getLogger("procscope.trace.program_socket")

MAX_LINE = 1 << 20  # the first message holds the script's source
MAX_SOURCE = 512 * 1024
PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def runtime_dir(create: bool = True) -> Path:
    """The user's private directory for procscope's sockets (0700, owned by the user)."""
    chosen = os.environ.get("PROCSCOPE_RUNTIME_DIR")
    if chosen:
        path = Path(chosen)
    elif os.environ.get("XDG_RUNTIME_DIR") and os.path.isdir(os.environ["XDG_RUNTIME_DIR"]):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "procscope"
    else:
        path = Path("/tmp") / f"procscope-{os.getuid()}"
    if create:
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700, parents=True)
    info = os.lstat(path)
    # /tmp is shared: another user could have made the directory first, to read our
    # sockets' names or to plant one. Only a directory of ours that nobody else may
    # enter is used.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{path} is not a directory that only this user can open "
                              "(owner and mode 0700 are required)")
    return path


def find_server() -> dict[str, Any] | None:
    """The newest live server of this user on this machine: {"pid", "socket", "url"}."""
    try:
        folder = runtime_dir(create=False)
    except OSError:
        return None
    found = []
    for path in folder.glob("server-*.json"):
        try:
            info = json.loads(path.read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not os.path.exists(f"/proc/{pid}"):
            with contextlib.suppress(OSError):  # its server was killed (-9): it is stale
                path.unlink()
            continue
        found.append((path.stat().st_mtime, info))
    return max(found, key=lambda f: f[0])[1] if found else None


def peer_uid_pid(sock: socket.socket) -> tuple[int, int]:
    """The connecting process's uid and pid, as the kernel says (SO_PEERCRED)."""
    pid, uid, _ = PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                  PEERCRED.size))
    return uid, pid


class ProgramRuns(Protocol):
    """What the socket needs of the run manager (app.live.runs.RunManager)."""

    def create_program(self, program: dict[str, Any], peer_pid: int) -> tuple[Any, int]: ...

    def follow_program(self, run_id: str, pid: int) -> bool: ...

    def program_exited(self, run_id: str, exitcode: int | None) -> None: ...


def _parent_of(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(raw[raw.rfind(b")") + 2:].split()[1])


def check_request(request: Any) -> dict[str, Any]:
    """The program's description, checked: argv, cwd, command, source (or ValueError)."""
    if not isinstance(request, dict) or request.get("op") != "trace":
        raise ValueError("expected {\"op\": \"trace\", ...}")
    argv = request.get("argv")
    if not (isinstance(argv, list) and 0 < len(argv) <= 4096
            and all(isinstance(a, str) for a in argv)):
        raise ValueError("argv must be a list of strings")
    source = request.get("source")
    if source is not None and (not isinstance(source, str) or len(source) > MAX_SOURCE):
        raise ValueError("source must be a string of at most 512 KiB, or null")
    cwd = request.get("cwd")
    command = request.get("command")
    if not isinstance(cwd, str) or not isinstance(command, str):
        raise ValueError("cwd and command must be strings")
    name = request.get("source_name")
    # As the page shows them: a program may be given a token on its own command line.
    return {"argv": redact_argv(argv), "cwd": cwd, "command": redact_text(command),
            "source": source, "source_name": name if isinstance(name, str) else None}


class ProgramSocket:
    """The server's listener: one task per traced program, all on the event loop."""

    def __init__(self, runs: ProgramRuns, url: str) -> None:
        self.runs = runs
        self.url = url
        self.path: Path | None = None
        self.info_path: Path | None = None
        self._sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        folder = runtime_dir()
        self.path = folder / f"server-{os.getpid()}.sock"
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.set_inheritable(False)  # no run may hold it
        old = os.umask(0o177)  # created 0600: the directory is 0700 anyway
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.listen(16)
        sock.setblocking(False)
        self._sock = sock
        self.info_path = folder / f"server-{os.getpid()}.json"
        tmp = folder / f".server-{os.getpid()}.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "socket": str(self.path), "url": self.url}, f)
        os.replace(tmp, self.info_path)
        self._accepting = asyncio.ensure_future(self._accept())
        log.info("programs to trace: %s", self.path)

    async def stop(self) -> None:
        """Stop accepting (the files go first: nobody finds a server that is leaving)."""
        for path in (self.info_path, self.path):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
        tasks = [t for t in (self._accepting, *self._clients) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None
        while True:
            client, _ = await loop.sock_accept(self._sock)
            task = asyncio.ensure_future(self._serve(client))
            self._clients.add(task)
            task.add_done_callback(self._clients.discard)

    async def _serve(self, sock: socket.socket) -> None:
        """One traced program, from its request to its main's exit code."""
        run_id: str | None = None
        exited = False
        reader = _Lines(sock)
        try:
            uid, peer = peer_uid_pid(sock)
            if uid != os.getuid():
                log.warning("refused a program from uid %s (pid %s)", uid, peer)
                return
            try:
                program = check_request(await reader.json())
            except ValueError as e:
                await reader.send({"error": str(e)})
                return
            try:
                run, write_fd = self.runs.create_program(program, peer)
            except Exception as e:  # a cap (CapReached) or anything else: the peer is told
                await reader.send({"error": str(e)})
                return
            run_id = run.id
            try:
                socket.send_fds(sock, [_line({"run": run.id,
                                              "page": f"{self.url}/runs/{run.id}"})],
                                [write_fd])
            finally:
                os.close(write_fd)  # the program's processes hold the only write ends now
            pid = (await reader.json()).get("pid")
            # The program must be the peer's child: a client cannot have the server follow
            # (and, on cancel, kill) someone else's process group.
            if not isinstance(pid, int) or _parent_of(pid) != peer:
                await reader.send({"go": False, "error": "pid is not the peer's child"})
                return
            go = self.runs.follow_program(run.id, pid)
            await reader.send({"go": go})
            message = await reader.json(eof_ok=True)
            code = message.get("exit") if message else None
            self.runs.program_exited(run.id, code if isinstance(code, int) else None)
            exited = True
        except (OSError, ValueError, EOFError) as e:
            log.info("a traced program's connection ended: %s", e)
        finally:
            if run_id is not None and not exited:
                self.runs.program_exited(run_id, None)
            sock.close()


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\n"


class _Lines:
    """JSON lines over a non-blocking socket, on the loop."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    async def json(self, eof_ok: bool = False) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise ValueError("message too long")
            chunk = await loop.sock_recv(self.sock, 65536)
            if not chunk:
                if eof_ok:
                    return {}
                raise EOFError("the peer closed the connection")
            self.buf += chunk
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise ValueError("expected a JSON object")
        return obj

    async def send(self, obj: dict[str, Any]) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, _line(obj))
