"""Fenced writes: a run's owner checked in the same Redis step as each write to the run.

Runs in the server's Redis thread (app.cluster.redis_link): the scripts are called by
app.cluster.redis_hub's writer and app.cluster.redis_registry's claim.

Why: a replica that stops for a while (SIGSTOP, a long GC pause, a laptop lid) past its
lease is taken for dead; another one claims its live runs and ends them `interrupted`. When
the stalled one wakes, its relay still holds the runs' pipes and would go on appending
events (and saving records) after that run.end. A check in Python before the write would
race with the claim; a Lua script runs in Redis as one step, so the check and the write
cannot be split, and the claim (a script too) is either before it or after it.

    {ns}:owner:RUN      the replica allowed to write the run's log and record (its id)

    save / append       the owner key missing (a new run): it becomes ours; ours: written;
                        another's: nothing written, that owner's id returned (fenced)
    claim               the owner key moved from the dead replica to us, only if it still
                        names the dead one: exactly one claimer wins
"""

from __future__ import annotations

# KEYS: owner, stream. ARGV: our id, then (entry id, kind, JSON) per event.
# An XADD refused as "equal or smaller than the top item" was written before a broken
# connection made the writer retry its batch: skipped, so the retry is safe.
APPEND = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return owner end
if not owner then redis.call('SET', KEYS[1], ARGV[1]) end
for i = 2, #ARGV, 3 do
  local ok = redis.pcall('XADD', KEYS[2], ARGV[i], 'k', ARGV[i + 1], 'j', ARGV[i + 2])
  if type(ok) == 'table' and ok.err and not string.find(ok.err, 'equal or smaller') then
    return redis.error_reply(ok.err)
  end
end
return false
"""

# KEYS: owner, the runs hash, the news channel. ARGV: our id, the run's id, its entry.
SAVE = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return owner end
if not owner then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PUBLISH', KEYS[3], ARGV[3])
return false
"""

# KEYS: owner. ARGV: the dead replica's id, ours. 1 if the run is ours now.
CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


def fenced_by(result: object) -> str | None:
    """The owner that fenced a save or an append off (its id), or None if it was written."""
    if isinstance(result, bytes):
        return result.decode()
    if isinstance(result, str):
        return result
    return None
