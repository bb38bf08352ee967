"""The teacher's token: where procscope reads it, and how it reaches procscope's own
processes without ever being in a command line or an environment.

Runs in the user's terminal (app.cli, before anything else is done) and in each process
procscope starts of its own: a replica (app.cluster.replicas), the server `procscope trace`
starts for itself (app.trace.trace_cli).

A process's command line (/proc/PID/cmdline) is what `ps` shows every user of the
machine, and what a lesson reads of the process that adopts its orphan: the server. Its
environment is what every process it starts inherits. So a token is never left in either:

    --token TOKEN, $PROCSCOPE_TOKEN ─► take(): read, then the process execs itself again
        (same pid, same command line but the token, the token's variable gone from the
        environment /proc keeps), the token in a pipe whose read end the new image inherits
    --token-file PATH ─► read_file(): refused if anyone but its owner may read it
    a replica, trace's server ─► handing_over(): the same pipe, given to the new process

The pipe holds the whole token (a token is far smaller than a pipe's buffer) and is
closed for writing before the new process starts; the new process reads it to the end
and closes it at once. Its number travels in $PROCSCOPE_TOKEN_FD (a number, no secret),
which is taken out of os.environ too, so that no child inherits even that.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator

ENV = "PROCSCOPE_TOKEN"
FD_ENV = "PROCSCOPE_TOKEN_FD"
FLAG = "--token"
FILE_FLAG = "--token-file"
MAX_LENGTH = 1024  # app.settings.TOKEN's


def take(argv: list[str], ours: int, *, may_reexec: bool) -> tuple[list[str], str | None]:
    """(the command line without the token, the token or None), from argv[:ours] (the
    words that are procscope's own, not a traced program's), $PROCSCOPE_TOKEN or the pipe
    of a process that handed it over.

    With `may_reexec` (argv is this process's own) a token that was in the command line
    or the environment makes the process exec itself again without it: this call then
    does not return; the new image's does, with the token from the pipe.
    """
    inherited = _read_inherited()
    head, given = _split_flag(argv[:ours])
    argv = head + argv[ours:]
    from_env = os.environ.pop(ENV, "") or None  # gone before any child can inherit it
    from_file = any(w == FILE_FLAG or w.startswith(FILE_FLAG + "=") for w in head)
    if given is not None and from_file:
        raise SystemExit(f"procscope: {FLAG} and {FILE_FLAG}: give one of them")
    # --token-file is read later (read_file); $PROCSCOPE_TOKEN gives way to either flag.
    token = inherited if from_file else given or inherited or from_env
    if may_reexec and (given is not None or from_env is not None):
        _reexec(argv, token)
    return argv, token


def read_file(path: str) -> str:
    """The token in `path` (surrounding whitespace and the newline stripped).

    Refused if its group or others may read or write it: a token others can read is
    theirs too (what `ps` did with --token), and one others can write is theirs to choose.
    Checked on the open file, so what is read is what was checked.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SystemExit(f"procscope: {FILE_FLAG} {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise SystemExit(f"procscope: {FILE_FLAG} {path}: not a file")
        if mode & 0o077:
            raise SystemExit(f"procscope: {FILE_FLAG} {path}: others may read it (mode "
                             f"{stat.filemode(mode)}); make it yours alone: chmod 600 {path}")
        text = f.read(64 * 1024).decode(errors="replace").strip()
    if not text:
        raise SystemExit(f"procscope: {FILE_FLAG} {path}: the file is empty")
    return text


@contextlib.contextmanager
def handing_over(token: str | None) -> Iterator[tuple[dict[str, str], tuple[int, ...]]]:
    """(environment to add, fds to pass) for a procscope process to start with the token:

        with handing_over(token) as (env, fds):
            subprocess.Popen(argv, env={**os.environ, **env}, pass_fds=fds)
    """
    if token is None:
        yield {}, ()
        return
    fd = _pipe_holding(token)
    try:
        yield {FD_ENV: str(fd)}, (fd,)
    finally:
        os.close(fd)  # the child has its own copy now


def _split_flag(words: list[str]) -> tuple[list[str], str | None]:
    """The words without `--token VALUE` / `--token=VALUE`, and the value (the last one
    given wins, as argparse would have it). A `--token` without a value is left for
    argparse to refuse."""
    kept: list[str] = []
    value = None
    at = 0
    while at < len(words):
        word = words[at]
        if word.startswith(FLAG + "="):
            value = word[len(FLAG) + 1:]
        elif word == FLAG and at + 1 < len(words):
            value = words[at + 1]
            at += 1
        else:
            kept.append(word)
        at += 1
    return kept, value


def _pipe_holding(token: str) -> int:
    """A pipe's read end, the whole token in it and its write end closed."""
    if len(token) > MAX_LENGTH:  # app.settings refuses it anyway; here, it would not fit
        raise SystemExit(f"procscope: a token is at most {MAX_LENGTH} characters")
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, token.encode())  # <= 4 KiB: within the pipe's buffer, at once
    finally:
        os.close(write_fd)
    return read_fd


def _read_inherited() -> str | None:
    """The token a process that started this one handed over (handing_over, _reexec)."""
    value = os.environ.pop(FD_ENV, None)
    if value is None:
        return None
    try:
        fd = int(value)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise OSError("not a pipe")
    except (ValueError, OSError) as e:
        raise SystemExit(f"procscope: ${FD_ENV}={value!r} is not the pipe of a token "
                         f"({e})") from None
    chunks = []
    try:
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode() or None


def _reexec(argv: list[str], token: str | None) -> None:
    """Exec this process again with `argv` as its arguments, the token in a pipe.

    The interpreter's own options and how procscope was started (`-m procscope`, the
    console script) are kept: they are sys.orig_argv less the arguments sys.argv has.
    Returns only where that cannot be told (an embedded interpreter), having said so.
    """
    args = sys.argv[1:]
    prefix = sys.orig_argv[:len(sys.orig_argv) - len(args)]
    if sys.orig_argv[len(prefix):] != args or not prefix:  # an embedded interpreter
        print("procscope: the token stays in this process's command line and environment "
              "(cannot exec again): use --token-file", file=sys.stderr)
        return None
    if token is not None:
        fd = _pipe_holding(token)
        os.set_inheritable(fd, True)
        os.environ[FD_ENV] = str(fd)
    os.environ.pop(ENV, None)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [*prefix, *argv], os.environ)
