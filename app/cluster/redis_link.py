"""The connection to Redis: one thread running an asyncio loop of its own, one client.

Runs in the server, in a thread of its own ("procscope-redis"). Everything that talks to
Redis (app.cluster.redis_hub's writer and readers, app.cluster.cluster_runs' lease and news) is a
coroutine on this loop, so the server's loop only ever hands work over:

    server loop ── call_soon / spawn / submit ──► redis loop ── redis.asyncio ──► Redis
    server loop ◄── call_soon_threadsafe (news, events read, writes done) ──┘

The client's pool is bounded and blocking (redis.asyncio.BlockingConnectionPool): a
coroutine that finds every connection taken waits for one instead of opening more. Each
live run followed holds one (its XREAD BLOCK), the writer, the news and the lease one each.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions

from procscope.worker_thread import WorkerThread

T = TypeVar("T")


log = logging.getLogger("procscope.redis")


def _log_failure(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("redis: a task failed", exc_info=future.exception())


class RedisUnreachable(RuntimeError):
    """No answer from Redis at start: the message says where, and why."""


class RedisLink:
    """The Redis thread, its loop and its client."""

    errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

    def __init__(self, url: str, pool_size: int) -> None:
        self.url = url
        self.pool_size = pool_size
        parts = urllib.parse.urlsplit(url)
        # Never a password in a log line or /api/status.
        self.shown_url = (f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"
                          if parts.hostname else url)
        self._loop = asyncio.new_event_loop()
        self._thread = WorkerThread("procscope-redis", self._loop.run_forever)
        self._redis: aioredis.Redis | None = None

    @property
    def redis(self) -> aioredis.Redis:
        assert self._redis is not None
        return self._redis

    def start(self) -> None:
        """Start the thread and PING (blocking); RedisUnreachable if there is no answer."""
        self._thread.start()
        try:
            self.call(self._connect(), timeout=10)
        except Exception as e:
            self.stop()
            raise RedisUnreachable(f"cannot reach Redis at {self.shown_url} ({e}); start "
                                   "redis-server, or check --redis / PROCSCOPE_REDIS") from None

    async def _connect(self) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, max_connections=self.pool_size, timeout=10,
            socket_connect_timeout=3, health_check_interval=10)
        self._redis = aioredis.Redis(connection_pool=pool)
        try:
            await self._redis.ping()
        except BaseException:
            await self._redis.aclose(close_connection_pool=True)
            self._redis = None
            raise

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run coro on the Redis loop and wait for it (at start, or from another thread)."""
        return self.submit(coro).result(timeout)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """A task on the Redis loop that runs until it returns or the link stops; if it
        fails, that is logged (nobody else waits for it)."""
        future = self.submit(coro)
        future.add_done_callback(_log_failure)
        return future

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is stopping
            self._loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        """Cancel every task, close the client, stop the loop, join, clear the handle."""
        if not self._thread.running:
            return
        with contextlib.suppress(TimeoutError, RuntimeError):
            self.call(self._close(), timeout=10)
        self._thread.stop(lambda: self._loop.call_soon_threadsafe(self._loop.stop), timeout=10)
        self._loop.close()

    async def _close(self) -> None:
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose(close_connection_pool=True)
            self._redis = None
