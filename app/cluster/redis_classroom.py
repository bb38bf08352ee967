"""The classroom shared by replicas (--redis): one classroom stream and one question for all.

Runs in the server: the verbs on its event loop, every Redis step in the Redis thread
(app.cluster.redis_link). A student's page on replica B follows the run the teacher starts on A,
and the question opened on any replica counts the answers sent to every one.

    {ns}:classroom          stream of the classroom's frames: entry id SEQ-0, fields k
                            (kind), d (data JSON); trimmed to about KEEP entries
    {ns}:classroom:seq      INCR: the frames' seqs, in the same script as their XADD, so
                            the stream is in seq order and a page's Last-Event-ID means the
                            same on every replica
    {ns}:question           hash: the open (or last closed) question: id, open, experiment,
                            json (the question without its id), closed_at, run
    {ns}:question:ids       INCR: question ids
    {ns}:answers            hash voter -> answer (JSON) of the question

Each replica reads the stream with one reader task into its own NewsLog (the same seqs, the
same bytes), which its pages' streams follow as before (app.streams.stream). Opening, answering and
closing are Lua scripts: the check ("is one open?", "is it still this one?", "2,000 in?")
and the change are one step, whichever replica the request came to. Open and answer write
their frame in the same step too; the frames that need Python (a closed question's counted
answers, run.created) go through one writer task, in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from procscope.classroom.classroom import KEEP, Classroom, compact
from procscope.classroom.predictions import (
    MAX_ANSWERS,
    Predictions,
    QuestionClosed,
    TooManyAnswers,
    already_open,
    asked,
    checked,
    kept,
    now_iso,
    view,
)
from procscope.cluster.redis_hub import RedisHub
from procscope.live.run_record import Run
from procscope.live.said import said

log = logging.getLogger("procscope.redis")
T = TypeVar("T")

BLOCK_MS = 1000

# KEYS: stream, seq. ARGV: kind, data JSON, about how many to keep. -> the frame's seq.
TELL = """
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'k', ARGV[1], 'd', ARGV[2])
return seq
"""

# The same, inside the scripts that change the question and tell it in one step.
FRAME = """
local function frame(stream, seqkey, keep, kind, data)
  local seq = redis.call('INCR', seqkey)
  redis.call('XADD', stream, 'MAXLEN', '~', keep, seq .. '-0', 'k', kind, 'd', data)
end
"""

# KEYS: question, answers, ids, stream, seq. ARGV: the question's JSON without its id, its
# public view without its id (open, total 0), its experiment, KEEP.
# -> {1, id} opened (and its prediction.open frame written), or {0, id}: one is open.
OPEN = FRAME + """
if redis.call('HGET', KEYS[1], 'open') == '1' then
  return {0, tonumber(redis.call('HGET', KEYS[1], 'id'))}
end
local id = redis.call('INCR', KEYS[3])
redis.call('DEL', KEYS[2], KEYS[1])
redis.call('HSET', KEYS[1], 'open', '1', 'id', id, 'experiment', ARGV[3], 'json', ARGV[1])
frame(KEYS[4], KEYS[5], ARGV[4], 'prediction.open',
      '{"id":' .. id .. ',' .. string.sub(ARGV[2], 2))
return {1, id}
"""

# KEYS: question, answers, stream, seq. ARGV: question id, voter, answer JSON, MAX, KEEP.
# -> the total (and its prediction.count frame written), -1 not open (or another
# question), -2 the cap.
ANSWER = FRAME + """
if redis.call('HGET', KEYS[1], 'open') ~= '1' or redis.call('HGET', KEYS[1], 'id') ~= ARGV[1]
then return -1 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0
   and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then return -2 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local total = redis.call('HLEN', KEYS[2])
frame(KEYS[3], KEYS[4], ARGV[5], 'prediction.count',
      '{"id":' .. ARGV[1] .. ',"total":' .. total .. '}')
return total
"""

# KEYS: question, answers. ARGV: only if about this experiment ('' any), closed_at, run JSON.
# -> {id, json, answers (flat)} closed, or nil: none open (or about another lesson).
CLOSE = """
if redis.call('HGET', KEYS[1], 'open') ~= '1' then return nil end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'experiment') ~= ARGV[1] then return nil end
redis.call('HSET', KEYS[1], 'open', '0', 'closed_at', ARGV[2], 'run', ARGV[3])
return {redis.call('HGET', KEYS[1], 'id'), redis.call('HGET', KEYS[1], 'json'),
        redis.call('HGETALL', KEYS[2])}
"""


class RedisPredictions(Predictions):
    """The cluster's one question; `public()` is this replica's view of it, kept from the
    classroom stream's frames (a few ms behind a change made on another replica)."""

    def __init__(self, hub: RedisHub, tell: Any) -> None:
        super().__init__(tell)
        self.hub = hub
        redis = hub.link.redis
        self._open, self._answer, self._close_script = (
            redis.register_script(OPEN), redis.register_script(ANSWER),
            redis.register_script(CLOSE))
        self.shown: dict[str, Any] | None = None

    def _keys(self, *names: str) -> list[str]:
        return [self.hub.key(*name.split(":")) for name in names]

    def public(self) -> dict[str, Any] | None:
        return self.shown

    def seen(self, kind: str, data: dict[str, Any]) -> None:
        """A prediction.* frame read from the classroom stream: this replica's view."""
        shown = self.shown
        if kind == "prediction.count":
            if shown is not None and shown["id"] == data["id"] and shown["open"]:
                shown["total"] = max(shown["total"], data["total"])
        elif shown is None or data["id"] >= shown["id"]:
            self.shown = data

    async def load(self) -> dict[str, Any] | None:
        """In the Redis thread: the question's public view as Redis has it now."""
        redis = self.hub.link.redis
        q, answers = self._keys("question", "answers")
        got: Any = await redis.hgetall(q)
        if not got:
            return None
        current = {"id": int(got[b"id"]), **json.loads(got[b"json"])}
        if got[b"open"] != b"1":
            current.update(closed_at=got[b"closed_at"].decode(),
                           run=json.loads(got[b"run"]))
        raw: Any = await redis.hgetall(answers)
        return view(current, got[b"open"] == b"1",
                    {k.decode(): json.loads(v) for k, v in raw.items()})

    def loaded(self, public: dict[str, Any] | None) -> None:
        """On the loop: what load() read, unless the stream has told us newer already."""
        if public is not None and (self.shown is None or public["id"] > self.shown["id"]
                                   or public["id"] == self.shown["id"] and not public["open"]):
            self.shown = public

    async def open(self, experiment: str) -> dict[str, Any]:
        question = asked(experiment)  # KeyError: no such lesson with a question
        public = {**question, "open": True, "total": 0}
        opened, qid = await self._call(self._open(
            keys=self._keys("question", "answers", "question:ids", "classroom",
                            "classroom:seq"),
            args=[compact(question), compact(public), experiment, KEEP]))
        if not opened:
            raise already_open(qid)
        return {"id": qid, **public}

    async def answer(self, voter: str, value: float | str) -> dict[str, Any]:
        q = self.shown
        if q is None or not q["open"]:
            self.loaded(await self._call(self.load()))  # opened a moment ago elsewhere?
            q = self.shown
            if q is None or not q["open"]:
                raise QuestionClosed(said("no question is open"))
        value = checked(q, value)
        total = await self._call(self._answer(
            keys=self._keys("question", "answers", "classroom", "classroom:seq"),
            args=[q["id"], voter, compact(value), MAX_ANSWERS, KEEP]))
        if total == -1:
            raise QuestionClosed(said("no question is open"))
        if total == -2:
            raise TooManyAnswers
        return {"id": q["id"], "answer": value, "total": int(total)}

    async def close(self, run_id: str | None = None) -> dict[str, Any]:
        closed = await self._call(self._closing("", run_id))
        if closed is None:
            raise QuestionClosed(said("no question is open"))
        return closed

    def close_for(self, run_id: str, experiment: str) -> dict[str, Any] | None:
        # Blocks the loop for one round trip, as the run's id does (app.cluster.cluster_runs): the
        # run's record must say which question its start closed before anyone sees it.
        closed = self.hub.link.call(self._closing(experiment, run_id), timeout=5)
        return kept(closed) if closed is not None else None

    async def _closing(self, experiment: str, run_id: str | None) -> dict[str, Any] | None:
        """In the Redis thread: close the open question (about `experiment`, if given);
        its public view with the answers counted, told to every page; None if none was."""
        closed_at = now_iso()
        got: Any = await self._close_script(keys=self._keys("question", "answers"),
                                            args=[experiment, closed_at, compact(run_id)])
        if got is None:
            return None
        qid, question, flat = got
        answers = {flat[i].decode(): json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}
        current = {"id": int(qid), **json.loads(question), "closed_at": closed_at,
                   "run": run_id}
        public = view(current, False, answers)
        assert public is not None
        self.tell("prediction.closed", public)
        return public

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """On the loop: run coro in the Redis thread and wait for it."""
        return await asyncio.wrap_future(self.hub.link.submit(coro))


class RedisClassroom(Classroom):
    """The classroom stream read from Redis, the question in Redis (RedisPredictions)."""

    def __init__(self, hub: RedisHub) -> None:
        super().__init__()
        self.hub = hub
        self.shared = RedisPredictions(hub, self._tell)
        self.predictions = self.shared
        self._queue: asyncio.Queue[tuple[str, bytes]] = hub.link.call(_make_queue())
        self._xadd = hub.link.redis.register_script(TELL)

    async def start(self) -> None:
        """On the server's loop, once: the question as it is, then the stream from now on."""
        self.shared.loaded(await asyncio.wrap_future(
            self.hub.link.submit(self.shared.load())))
        last = await asyncio.wrap_future(self.hub.link.submit(self._last_seq()))
        self.news.start_at(last)
        self.hub.link.spawn(self._read_loop(last))
        self.hub.link.spawn(self._write_loop())

    def run_created(self, run: Run) -> None:
        """The owner's RunManager.on_created: as Classroom's, told to every replica."""
        run.prediction = self.predictions.close_for(run.id, run.experiment)
        self._tell("run.created", run.to_json())

    def _tell(self, kind: str, data: dict[str, Any]) -> None:
        """From either loop: a frame for every replica's classroom stream, in order."""
        self.hub.link.call_soon(self._queue.put_nowait, (kind, compact(data)))

    def _arrived(self, frames: list[tuple[int, str, bytes]]) -> None:
        """On the server's loop: frames read from Redis, into this replica's log."""
        for seq, kind, data in frames:
            self.news.add_at(seq, kind, data)
            if kind.startswith("prediction."):
                self.shared.seen(kind, json.loads(data))

    # --- in the Redis thread ---

    async def _last_seq(self) -> int:
        last: Any = await self.hub.link.redis.get(self.hub.key("classroom", "seq"))
        return int(last or 0)

    async def _write_loop(self) -> None:
        keys = [self.hub.key("classroom"), self.hub.key("classroom", "seq")]
        while True:
            kind, data = await self._queue.get()
            while True:
                try:
                    await self._xadd(keys=keys, args=[kind, data, KEEP])
                    break
                except self.hub.link.errors as e:
                    log.warning("redis: cannot tell the classroom %s (%s); retrying", kind, e)
                    await asyncio.sleep(0.5)

    async def _read_loop(self, cursor: int) -> None:
        stream = self.hub.key("classroom")
        while True:
            try:
                got: Any = await self.hub.link.redis.xread({stream: f"{cursor}-0"},
                                                           count=1000, block=BLOCK_MS)
            except self.hub.link.errors as e:
                log.warning("redis: reading the classroom after %d: %s; retrying", cursor, e)
                await asyncio.sleep(0.5)
                continue
            if not got:
                continue
            entries = next(iter(got.values()))[0] if isinstance(got, dict) else got[0][1]
            frames = [(int(entry_id.split(b"-", 1)[0]), fields[b"k"].decode(), fields[b"d"])
                      for entry_id, fields in entries]
            if frames:
                cursor = frames[-1][0]
                self.hub._tell(self._arrived, frames)


async def _make_queue() -> asyncio.Queue[tuple[str, bytes]]:
    return asyncio.Queue()  # made on the Redis loop, which alone uses it
