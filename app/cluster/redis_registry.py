"""The run registry in Redis: ids, replicas' leases, news of runs, commands to owners.

Runs in the server's Redis thread (app.cluster.redis_link): every coroutine here is submitted to
its loop by app.cluster.cluster_runs, which gets the answers back on the server's loop.

    {ns}:next_id            INCR: run ids, unique across the cluster, in start order
    {ns}:runs               hash run -> {"record", "owner"} (written by app.cluster.redis_hub)
    {ns}:log:RUN            the run's stream (app.cluster.redis_hub)
    {ns}:replica:ID         a replica's lease: its load as JSON, expiring after LEASE_MS
    {ns}:replicas           set of replica ids (pruned when their lease is gone)
    {ns}:news               pub/sub: a run's record as saved, or {"forget": RUN}
    {ns}:cmd:ID             pub/sub: {"cancel": RUN, "reason"} for the run's owner
    {ns}:owner:RUN          the one replica that may write the run (app.cluster.redis_fence): a
                            claim moves it from a dead owner to the claimer
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from procscope.cluster.redis_fence import CLAIM
from procscope.cluster.redis_hub import RedisHub

log = logging.getLogger("procscope.redis")

LEASE_MS = 3000  # a replica not heard from for this long is dead: its live runs are ended
RESYNC_SECONDS = 5.0  # the whole registry is read again this often (news can be missed)


class Registry:
    """The cluster's shared state, for one replica (`rid`)."""

    def __init__(self, hub: RedisHub) -> None:
        self.hub = hub
        self.rid = hub.rid
        self._claim = hub.link.redis.register_script(CLAIM)

    async def take_id(self) -> int:
        return int(await self.hub.link.redis.incr(self.hub.key("next_id")))

    async def renew(self, load: dict[str, Any], mine: list[str]
                    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """Renew our lease with our load; the live replicas' loads, ours included, and
        those of our live runs `mine` that another replica owns now (run -> its id)."""
        redis = self.hub.link.redis
        key = self.hub.key
        pipe = redis.pipeline(transaction=False)
        pipe.set(key("replica", self.rid), json.dumps(load), px=LEASE_MS)
        pipe.sadd(key("replicas"), self.rid)
        pipe.smembers(key("replicas"))
        if mine:
            pipe.mget([key("owner", run_id) for run_id in mine])
        _, _, members, *owners = await pipe.execute()
        taken = {run_id: owner.decode() for run_id, owner
                 in zip(mine, owners[0] if owners else [], strict=True)
                 if owner is not None and owner.decode() != self.rid}
        ids = sorted(m.decode() for m in members)
        values = await redis.mget([key("replica", i) for i in ids]) if ids else []
        alive = {}
        for rid, value in zip(ids, values, strict=True):
            if value is None:
                await redis.srem(key("replicas"), rid)
            else:
                alive[rid] = json.loads(value)
        return alive, taken

    async def used_memory(self) -> int:
        """The bytes Redis holds (INFO memory's used_memory): every replica's runs."""
        info: Any = await self.hub.link.redis.info("memory")
        return int(info["used_memory"])

    async def leave(self) -> None:
        await self.hub.link.redis.delete(self.hub.key("replica", self.rid))
        await self.hub.link.redis.srem(self.hub.key("replicas"), self.rid)

    async def claim(self, run_id: str, dead: str) -> bool:
        """True for the one replica that may end `run_id` for its dead owner `dead`: the
        run is ours from now on, and the dead one's writes to it are refused."""
        got = await self._claim(keys=[self.hub.key("owner", run_id)], args=[dead, self.rid])
        return bool(got)

    async def command(self, owner: str, command: dict[str, Any]) -> int:
        """Tell the run's owner; how many replicas heard it (0: the owner is gone)."""
        return int(await self.hub.link.redis.publish(self.hub.key("cmd", owner),
                                                     json.dumps(command)))

    async def records(self) -> dict[str, dict[str, Any]]:
        raw: Any = await self.hub.link.redis.hgetall(self.hub.key("runs"))
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    async def listen(self, on_records: Callable[[dict[str, dict[str, Any]]], None],
                     on_news: Callable[[dict[str, Any]], None],
                     on_command: Callable[[dict[str, Any]], None]) -> None:
        """Until cancelled: every record (at once, then every RESYNC_SECONDS), each piece
        of news and each command for us, handed to the server's loop (hub._tell)."""
        news, commands = self.hub.key("news"), self.hub.key("cmd", self.rid)
        while True:
            pubsub = self.hub.link.redis.pubsub()
            try:
                await pubsub.subscribe(news, commands)  # first: nothing said after is missed
                loop = asyncio.get_running_loop()
                resync = 0.0
                while True:
                    if loop.time() >= resync:
                        self.hub._tell(on_records, await self.records())
                        resync = loop.time() + RESYNC_SECONDS
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    payload = json.loads(message["data"])
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    self.hub._tell(on_command if channel == commands else on_news, payload)
            except self.hub.link.errors as e:
                log.warning("redis: lost the news (%s); listening again", e)
                await asyncio.sleep(0.5)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis 8.1
