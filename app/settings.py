"""What `procscope` can be told, with the defaults `procscope --help` shows.

Runs in the user's terminal and in the server. Standard library only: app.cli imports it
before it knows whether the web stack is needed at all.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields

# The characters a link (?token=) and a cookie carry as they are; at least 8 of them.
TOKEN = re.compile(r"[A-Za-z0-9._~-]{8,1024}")
MAX_PORT = 65535
CPU_LANES = ("auto", "exact", "sampled")  # app.kernel.cpu_lanes.choose_cpu_lanes's modes


class SettingRefused(ValueError):
    """A value no server can run with. The message names the flag, as `procscope` prints
    it after "procscope: ".

    `exit_code` is what `procscope` exits with for it: 2 (argparse's, after its usage
    line) for the token, --port and --replicas, 1 for the others; the codes it has always
    used, kept: a script may tell them apart.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def default_db() -> str:
    """The history file in the user's data directory (the XDG base directory spec: the
    only platform procscope runs on is Linux, so this is what platformdirs would say)."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(data, "procscope", "history.sqlite3")


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told; each field is one `--flag` (see OPTIONS)."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = field(default=None, repr=False)  # a repr is printed, logged
    run_timeout: float = 300.0
    max_events: int = 1_000_000
    sample_hz: float = 2000.0
    cpu_lanes: str = "auto"
    sample_budget: float = 0.15
    keep_runs: int = 500
    db: str = default_db()
    max_db_mb: float = 1024.0
    max_runs: int = 8
    max_processes: int = 2000
    max_streams: int = 1000
    send_timeout: float = 30.0  # a client that takes longer to accept one chunk is dropped
    redis: str | None = None  # replicas sharing runs through Redis (app.cluster.cluster_runs)
    replicas: int = 1

    def __post_init__(self) -> None:
        """Refuse what no server can run with, whoever made these Settings: the command
        line, a replica, `procscope trace` for its own server, create_app's caller. Each
        refusal names the flag; `dataclasses.replace()` checks again."""
        if self.token is not None and not TOKEN.fullmatch(self.token):
            raise SettingRefused("the token must be 8 to 1024 letters, digits, '-', '.', '_' "
                                 "or '~' (what a link carries as it is), e.g. the output of "
                                 "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
        if not 0 <= self.port <= MAX_PORT:
            raise SettingRefused(f"--port must be 0 to {MAX_PORT}")
        if self.replicas < 1:
            raise SettingRefused("--replicas must be at least 1")
        if self.replicas > 1 and self.port == 0:
            raise SettingRefused("--replicas needs a --port other than 0 (replica i listens "
                                 "on PORT+i)")
        if self.port + self.replicas - 1 > MAX_PORT:
            raise SettingRefused(f"--replicas {self.replicas} from --port {self.port} needs "
                                 f"ports past {MAX_PORT} (replica i listens on PORT+i)")
        if self.replicas > 1 and not self.redis:
            raise SettingRefused("--replicas needs --redis URL (or PROCSCOPE_REDIS): the "
                                 "replicas share their runs through it")
        if not 0 < self.sample_budget <= 1:
            raise SettingRefused("--sample-budget must be in (0, 1]", exit_code=1)
        if not 1 <= self.sample_hz <= 5000:
            raise SettingRefused("--sample-hz must be between 1 and 5000", exit_code=1)
        if self.cpu_lanes not in CPU_LANES:
            raise SettingRefused("--cpu-lanes must be auto, exact or sampled", exit_code=1)
        if self.keep_runs < 1:
            raise SettingRefused("--keep-runs must be at least 1", exit_code=1)
        if not self.max_db_mb > 0:
            raise SettingRefused("--max-db-mb must be more than 0", exit_code=1)
        if not self.send_timeout > 0:
            raise SettingRefused("--send-timeout must be more than 0", exit_code=1)


# field -> (metavar, help); the default and the type come from Settings itself.
OPTIONS: dict[str, tuple[str | None, str]] = {
    "host": (None, "address to bind (default %(default)s: this machine only)"),
    "port": (None, "port (default %(default)s; 0: any free port, the one chosen is "
             "printed)"),
    "token": (None, "access token for starting and cancelling runs (default: "
              "--token-file, else $PROCSCOPE_TOKEN; generated and printed when --host is "
              "not loopback). Seen in `ps` until procscope has re-executed itself without "
              "it, an instant: prefer --token-file or $PROCSCOPE_TOKEN"),
    "run_timeout": ("SECONDS", "wall-clock limit of one run (default %(default)s)"),
    "max_events": ("N", "events kept per run; past it, only lifecycle events are kept and "
                   "the rest are counted as dropped (default %(default)s)"),
    "sample_hz": ("HZ", "at most how often the kernel sampler reads /proc for live runs "
                  "(1-5000, default %(default)s; it reads less often to stay in its CPU "
                  "budget, and at 100 Hz when the core lanes are exact)"),
    "cpu_lanes": ("MODE", "how the core lanes are drawn: exact (the kernel's context-switch "
                  "records, perf_event_open), sampled (/proc), or auto (exact where the "
                  "kernel allows; default %(default)s)"),
    "sample_budget": ("SHARE", "share of one core the sampler may use (default "
                      "%(default)s); with many processes it then samples less often, and "
                      "says so"),
    "keep_runs": ("N", "finished runs kept, with their events (default %(default)s); "
                  "older ones are forgotten"),
    "db": ("PATH", "the history: runs and their events, kept across restarts in this SQLite "
           "file (default %(default)s); :memory: keeps them in memory only, forgotten at "
           "exit"),
    "max_db_mb": ("MB", "past this size of the history file the oldest finished runs are "
                  "forgotten (default %(default)s)"),
    "max_runs": ("N", "runs alive at once (default %(default)s); past it, POST /api/runs "
                 "is 429"),
    "max_processes": ("N", "processes of runs alive at once (default %(default)s)"),
    "max_streams": ("N", "open event streams (default %(default)s); past it, 503"),
    "send_timeout": ("SECONDS", "a client that takes longer than this to accept data it "
                     "was sent (a stalled event stream) is dropped (default %(default)s)"),
    "redis": ("URL", "share runs with other replicas through this Redis (redis://HOST:PORT/DB; "
              "default $PROCSCOPE_REDIS, else none): every replica lists, streams and "
              "cancels every run; --db is then not used"),
    "replicas": ("N", "with --redis: start N replica servers on ports PORT..PORT+N-1 "
                 "(default %(default)s)"),
}
assert set(OPTIONS) == {f.name for f in fields(Settings)}
