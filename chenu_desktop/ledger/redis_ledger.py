"""The Redis ledger: a hash per task, sorted-set indexes and a stream as change feed.

Every key lives under ``chenu:<namespace>:``:

- ``task:<id>``: the record, one JSON value per field (`encode_fields`), plus
  ``_trigrams``, the JSON list of trigrams under which its error is indexed.
- ``idx:all``, ``idx:s:<status>``, ``idx:q:<queue>``, ``idx:qs:<queue>:<status>``,
  ``idx:n:<name>``, ``idx:ns:<status>:<name>``: sorted sets of task ids scored
  by ``created_at``.
- ``sort:<key>:all``, ``sort:<key>:s:<status>``, ``sort:<key>:q:<queue>``,
  ``sort:<key>:qs:<queue>:<status>`` for each key in `_SCORED_SORTS`: sorted
  sets scored by the key's value (``-inf`` when it is None). Each member is
  `created_order_key` of ``created_at`` followed by the task id, so equal
  scores order by creation time, then by id.
- ``ids``: every task id at score 0, for prefix search with ZRANGEBYLEX.
- ``names``: a hash from ``<queue>:<name>`` to the number of records.
- ``tri:<trigram>``: sets of the task ids whose error, case-folded and cut to
  `ERROR_SEARCH_CHARS`, contains the trigram.
- ``finals``: the records in a final status, scored by ``finished_at`` (or,
  when that is None, by ``updated_at`` as of entering the status).
- ``counts``: a hash from ``<queue>:<status>`` to the number of records.
- ``stats:<queue>:<minute>``: finished-task figures of one minute (POSIX
  seconds // 60), kept for `STATS_RETENTION_MINUTES` after the last write.
- ``seq`` and ``changes``: the change counter and the stream of changes.
- ``worker:<id>``, ``workers`` and ``paused``: heartbeats and paused queues.

Each mutation of a record runs as one Lua script, so records, indexes,
counters and the feed never disagree. The scripts build key names from the
stored record, so the ledger needs a single Redis server, not a Redis Cluster.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import redis

from ..models import (
    FINAL_STATUSES,
    Change,
    ChangeBatch,
    QueueStats,
    TaskFilter,
    TaskQueue,
    TaskRecord,
    TaskSort,
    TaskStatus,
    WorkerInfo,
)
from .base import (
    DURATION_BUCKETS,
    RECORD_FIELDS,
    STATS_RETENTION_MINUTES,
    Ledger,
    RecentStats,
    Update,
    check_sort,
    claim_update,
    decode_record,
    encode_fields,
    encode_json,
    percentile_from_histogram,
    queue_stats_of,
)

logger = logging.getLogger("chenu.ledger")

#: Sort keys with sorted sets of their own. The text keys (name, queue,
#: status) page through the creation-time index of each value in turn.
_SCORED_SORTS = (
    TaskSort.STARTED,
    TaskSort.DURATION,
    TaskSort.ATTEMPTS,
    TaskSort.PRIORITY,
)
#: The hex digits of `created_order_key` at the start of a sort index member.
_ORDER_KEY_DIGITS = 16

#: Characters at the start of an error message that text search looks at.
#: NOTE: a substring of the error that ends past this point is not found.
ERROR_SEARCH_CHARS = 500

#: Records of one queue (and status) up to which a sorted page with a queue
#: filter reads them all and sorts them here, rather than walking the index.
SMALL_SORT_SET = 10_000

#: Members read per round trip when a name index must be checked member by member.
_SCAN_CHUNK = 256
#: Newest records a text-filtered page reads in order before it takes the
#: text plan, and how many it reads per round trip; see `_text_scan`.
TEXT_SCAN_ROWS = 4000
_TEXT_SCAN_CHUNK = 400

_WORKER_FIELDS = frozenset(f.name for f in dataclasses.fields(WorkerInfo))

_LUA_COMMON = """
local prefix = ARGV[1]
local retention = ARGV[2]
local FINAL = {@FINAL@}
local BUCKETS = {@BUCKETS@}

local function status_keys(status, queue, name)
  return {prefix .. 'idx:s:' .. status,
          prefix .. 'idx:qs:' .. queue .. ':' .. status,
          prefix .. 'idx:ns:' .. status .. ':' .. name}
end

local function fixed_keys(queue, name)
  return {prefix .. 'idx:all', prefix .. 'idx:q:' .. queue, prefix .. 'idx:n:' .. name}
end

local function add_to(keys, score, id)
  for _, key in ipairs(keys) do redis.call('ZADD', key, score, id) end
end

local function remove_from(keys, id)
  for _, key in ipairs(keys) do redis.call('ZREM', key, id) end
end

local function count(queue, status, delta)
  local field = queue .. ':' .. status
  if redis.call('HINCRBY', prefix .. 'counts', field, delta) == 0 then
    redis.call('HDEL', prefix .. 'counts', field)
  end
end

-- Called before any other write: an XADD failure then leaves the record untouched.
local function append_change(id, queue, status, at, deleted)
  local seq = redis.call('INCR', prefix .. 'seq')
  redis.call('XADD', prefix .. 'changes', 'MAXLEN', '~', retention,
             string.format('0-%d', seq), 'task_id', id, 'queue', queue,
             'status', status, 'at', at, 'deleted', deleted)
end

local function index_trigrams(args, id, first, last)
  for i = first, last do redis.call('SADD', prefix .. 'tri:' .. args[i], id) end
end

local function unindex_trigrams(id, stored)
  if not stored then return end
  for _, trigram in ipairs(cjson.decode(stored)) do
    redis.call('SREM', prefix .. 'tri:' .. trigram, id)
  end
end

local SORTS = {@SORTS@}

-- The 16 hex digits of a double that sort as the number does: the sign bit
-- is flipped for positive numbers and every bit for negative ones.
local function created_order_key(created)
  local bytes = struct.pack('>d', created)
  local flip = 0x80
  if string.byte(bytes, 1) >= 0x80 then flip = 0xff end
  local digits = {}
  for i = 1, 8 do
    local byte = string.byte(bytes, i)
    if i == 1 then
      byte = bit.bxor(byte, flip)
    elseif flip == 0xff then
      byte = bit.bxor(byte, 0xff)
    end
    digits[i] = string.format('%02x', byte)
  end
  return table.concat(digits)
end

local function sort_score(value)
  if value == nil then return '-inf' end
  return string.format('%.17g', value)
end

-- Read what the sort indexes of a stored record depend on; nil if it is missing.
local function sort_state(key, id)
  local v = redis.call('HMGET', key, 'status', 'queue', 'created_at',
                       'started_at', 'finished_at', 'attempts', 'priority')
  if not v[1] then return nil end
  local started, finished = tonumber(v[4]), tonumber(v[5])
  local duration = nil
  if started and finished then duration = finished - started end
  return {
    status = cjson.decode(v[1]),
    queue = cjson.decode(v[2]),
    member = created_order_key(tonumber(v[3])) .. id,
    scores = {started = sort_score(started), duration = sort_score(duration),
              attempts = sort_score(tonumber(v[6])),
              priority = sort_score(tonumber(v[7]))},
  }
end

local function sort_keys(sort, state)
  local base = prefix .. 'sort:' .. sort .. ':'
  return {base .. 'all', base .. 's:' .. state.status}
end

-- Move a record in the sort indexes from its `old` to its `new` state; either may be nil.
local function move_sorts(old, new)
  for _, sort in ipairs(SORTS) do
    local moved = not old or not new or old.member ~= new.member
      or old.status ~= new.status
    if old and moved then
      for _, key in ipairs(sort_keys(sort, old)) do
        redis.call('ZREM', key, old.member)
      end
    end
    if new and (moved or old.scores[sort] ~= new.scores[sort]) then
      for _, key in ipairs(sort_keys(sort, new)) do
        redis.call('ZADD', key, new.scores[sort], new.member)
      end
    end
  end
end

local function duration_bucket(seconds)
  for i, bound in ipairs(BUCKETS) do
    if seconds <= bound then return i - 1 end
  end
  return #BUCKETS
end
"""

# KEYS: the task hash, then optionally a sorted set of Huey messages.
# ARGV: prefix, retention, id, queue, status, name, created_at score, `finals`
# score or '', change time, trigram JSON or '', the fields as one JSON object
# of their stored texts, the trigrams, then with the second key the message
# and its score.
_LUA_INSERT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local id, queue, status, name = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
append_change(id, queue, status, ARGV[9], '0')

local values = {}
for field, text in pairs(cjson.decode(ARGV[11])) do
  values[#values + 1] = field
  values[#values + 1] = text
end
if ARGV[10] ~= '' then
  values[#values + 1] = '_trigrams'
  values[#values + 1] = ARGV[10]
end
redis.call('HSET', KEYS[1], unpack(values))

add_to(fixed_keys(queue, name), ARGV[7], id)
add_to(status_keys(status, queue, name), ARGV[7], id)
redis.call('ZADD', prefix .. 'ids', 0, id)
redis.call('HINCRBY', prefix .. 'names', queue .. ':' .. name, 1)
count(queue, status, 1)
if ARGV[8] ~= '' then redis.call('ZADD', prefix .. 'finals', ARGV[8], id) end
local last = #ARGV
if KEYS[2] then last = #ARGV - 2 end
index_trigrams(ARGV, id, 12, last)
move_sorts(nil, sort_state(KEYS[1], id))
if KEYS[2] then redis.call('ZADD', KEYS[2], ARGV[#ARGV], ARGV[#ARGV - 1]) end
return 1
"""

# The apply script's KEYS: the task hash.
# Its ARGV: prefix, retention, id, now, new status or '', expected statuses joined
# by ',' (or '*' for any), increment attempts '1'/'0', require no cancel
# '1'/'0', new created_at score or '', finished_at updated '1'/'0', error
# updated '1'/'0', trigram JSON or '', field count, field/value pairs, then the
# trigrams.
_LUA_APPLY_FUNCTION = """
-- Apply one update to the task hash `key`; A holds the arguments that the
-- apply script takes as ARGV. Returns false when the update does not apply.
local function apply_update(key, A)
  local id, now = A[3], A[4]
  local current = redis.call('HMGET', key, 'status', 'queue', 'task_name',
                             'cancel_requested', 'attempts', '_trigrams', 'history')
  if not current[1] then return false end
  local old_status = cjson.decode(current[1])
  local queue = cjson.decode(current[2])
  local name = cjson.decode(current[3])

  if A[6] ~= '*' then
    local allowed = false
    for status in string.gmatch(A[6], '[^,]+') do
      if status == old_status then allowed = true end
    end
    if not allowed then return false end
  end
  if A[8] == '1' and current[4] == 'true' then return false end

  local new_status = old_status
  if A[5] ~= '' then new_status = A[5] end
  append_change(id, queue, new_status, now, '0')
  local old_sorts = sort_state(key, id)

  local nfields = tonumber(A[13])
  local values = {'status', cjson.encode(new_status), 'updated_at', now}
  for i = 14, 13 + 2 * nfields do values[#values + 1] = A[i] end
  if A[7] == '1' then
    values[#values + 1] = 'attempts'
    values[#values + 1] = string.format('%d', (tonumber(current[5]) or 0) + 1)
  end
  if new_status ~= old_status then
    -- Append [status, now] to the JSON list as text: now stays exactly as sent.
    local entry = '[' .. cjson.encode(new_status) .. ',' .. now .. ']'
    local history = current[7]
    if not history or history == '[]' then
      history = '[' .. entry .. ']'
    else
      history = string.sub(history, 1, -2) .. ',' .. entry .. ']'
    end
    values[#values + 1] = 'history'
    values[#values + 1] = history
  end
  redis.call('HSET', key, unpack(values))

  if A[11] == '1' then
    unindex_trigrams(id, current[6])
    if A[12] ~= '' then
      redis.call('HSET', key, '_trigrams', A[12])
    else
      redis.call('HDEL', key, '_trigrams')
    end
    index_trigrams(A, id, 14 + 2 * nfields, #A)
  end

  local score = A[9]
  if score ~= '' then
    add_to(fixed_keys(queue, name), score, id)
  else
    score = redis.call('ZSCORE', prefix .. 'idx:all', id)
  end
  if new_status ~= old_status then
    remove_from(status_keys(old_status, queue, name), id)
    count(queue, old_status, -1)
    count(queue, new_status, 1)
  end
  if new_status ~= old_status or A[9] ~= '' then
    add_to(status_keys(new_status, queue, name), score, id)
  end
  move_sorts(old_sorts, sort_state(key, id))

  local times = redis.call('HMGET', key, 'started_at', 'finished_at')
  if FINAL[new_status] and (not FINAL[old_status] or A[10] == '1') then
    local finished = times[2]
    if finished == 'null' then finished = now end
    redis.call('ZADD', prefix .. 'finals', finished, id)
  elseif FINAL[old_status] and not FINAL[new_status] then
    redis.call('ZREM', prefix .. 'finals', id)
  end

  if old_status == 'running' and (new_status == 'success' or new_status == 'failure') then
    local started, finished = tonumber(times[1]), tonumber(times[2])
    local minute = math.floor((finished or tonumber(now)) / 60)
    local stats = prefix .. 'stats:' .. queue .. ':' .. string.format('%d', minute)
    if new_status == 'success' then
      redis.call('HINCRBY', stats, 'succeeded', 1)
    else
      redis.call('HINCRBY', stats, 'failed', 1)
    end
    if started and finished then
      local seconds = math.max(0, finished - started)
      redis.call('HINCRBYFLOAT', stats, 'duration_sum', string.format('%.17g', seconds))
      redis.call('HINCRBY', stats, 'duration_count', 1)
      redis.call('HINCRBY', stats, 'b' .. duration_bucket(seconds), 1)
    end
    redis.call('EXPIRE', stats, @STATS_TTL@)
  end
  return true
end
"""

_LUA_APPLY = """
if not apply_update(KEYS[1], ARGV) then return false end
return redis.call('HGETALL', KEYS[1])
"""

# The same arguments as the apply script; returns 1 or false, not the record.
_LUA_WRITE = """
if apply_update(KEYS[1], ARGV) then return 1 end
return false
"""

# KEYS: the sorted set of a Huey queue (the layout of huey 3.5's
# PriorityRedisStorage: an 8-byte prefix before each message), then the key
# that keeps the last task this worker took.
# ARGV: the apply script's arguments of a claim with '' as the task id, then
# the Huey task name that messages must carry.
# Pops the first message and claims the task it names, if the message has that
# name and no ETA. Returns false if the queue is empty, else the message and,
# if the claim applied, the record.
_LUA_TAKE = """
local popped = redis.call('ZPOPMIN', KEYS[1])
if #popped == 0 then return false end
local data = string.sub(popped[1], 9)
local ok, message = pcall(cjson.decode, data)
if not ok or type(message) ~= 'table' or message['name'] ~= ARGV[#ARGV]
    or message['eta'] ~= cjson.null or type(message['args']) ~= 'table'
    or type(message['args'][1]) ~= 'string' then
  return {data}
end
local id = message['args'][1]
local args = {}
for i = 1, #ARGV - 1 do args[i] = ARGV[i] end
args[3] = id
local key = prefix .. 'task:' .. id
if not apply_update(key, args) then return {data} end
redis.call('SET', KEYS[2], id, 'EX', 86400)
return {data, redis.call('HGETALL', key)}
"""

# KEYS: one index of task ids scored by creation time.
# ARGV: prefix, retention, lowest and highest score, '1' for oldest first,
# matches wanted, most rows to read, rows per read, the text, the text in
# lower case (ASCII only), '1' to test errors, characters of an error tested.
# Reads the index in order and tests each task's id, name and error against
# the text. Returns the ids that match or may match, a string with 'y' (a
# match) or '?' (non-ASCII text that the caller must fold) for each, and 1
# if the index had no more rows. It stops early when the matches read so far
# promise no full page within the most rows.
_LUA_TEXT_SCAN = """
local key, low, high = KEYS[1], ARGV[3], ARGV[4]
local ascending = ARGV[5] == '1'
local need, most, chunk = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local text, needle = ARGV[9], ARGV[10]
local errors, error_chars = ARGV[11] == '1', tonumber(ARGV[12])
local ids, flags, matches, read = {}, {}, 0, 0

local function verdict(id, name, err)
  if string.sub(id, 1, #text) == text then return 'y' end
  local undecided = false
  name = cjson.decode(name)
  if string.find(name, '[\\128-\\255]') then
    undecided = true
  elseif string.find(string.lower(name), needle, 1, true) then
    return 'y'
  end
  if errors and err then
    err = cjson.decode(err)
    if type(err) == 'string' then
      if string.find(err, '[\\128-\\255]') then
        undecided = true
      elseif string.find(string.lower(string.sub(err, 1, error_chars)), needle, 1, true) then
        return 'y'
      end
    end
  end
  if undecided then return '?' end
  return nil
end

while read < most do
  local batch
  if ascending then
    batch = redis.call('ZRANGEBYSCORE', key, low, high, 'LIMIT', read, chunk)
  else
    batch = redis.call('ZREVRANGEBYSCORE', key, high, low, 'LIMIT', read, chunk)
  end
  for _, id in ipairs(batch) do
    local v = redis.call('HMGET', prefix .. 'task:' .. id, 'task_name', 'error')
    if v[1] then
      local flag = verdict(id, v[1], v[2])
      if flag then
        ids[#ids + 1] = id
        flags[#flags + 1] = flag
        if flag == 'y' then matches = matches + 1 end
        if matches >= need then return {ids, table.concat(flags), 0} end
      end
    end
  end
  read = read + #batch
  if #batch < chunk then return {ids, table.concat(flags), 1} end
  if matches * most < need * read then return {ids, table.concat(flags), 0} end
end
return {ids, table.concat(flags), 0}
"""

# KEYS: the task hash.
# ARGV: prefix, retention, id, cutoff, change time.
_LUA_DELETE = """
local key, id = KEYS[1], ARGV[3]
local current = redis.call('HMGET', key, 'status', 'queue', 'task_name', '_trigrams')
if not current[1] then return 0 end
local status = cjson.decode(current[1])
local finished = redis.call('ZSCORE', prefix .. 'finals', id)
if not FINAL[status] or not finished then return 0 end
if tonumber(finished) >= tonumber(ARGV[4]) then return 0 end
local queue = cjson.decode(current[2])
local name = cjson.decode(current[3])
append_change(id, queue, status, ARGV[5], '1')

remove_from(fixed_keys(queue, name), id)
remove_from(status_keys(status, queue, name), id)
redis.call('ZREM', prefix .. 'ids', id)
redis.call('ZREM', prefix .. 'finals', id)
local name_field = queue .. ':' .. name
if redis.call('HINCRBY', prefix .. 'names', name_field, -1) <= 0 then
  redis.call('HDEL', prefix .. 'names', name_field)
end
count(queue, status, -1)
unindex_trigrams(id, current[4])
move_sorts(sort_state(key, id), nil)
redis.call('DEL', key)
return 1
"""


# KEYS: the task hash.
# ARGV: prefix, retention, id.
_LUA_SORT_INDEX = """
local state = sort_state(KEYS[1], ARGV[3])
if not state then return 0 end
move_sorts(nil, state)
return 1
"""


def _lua(body: str) -> str:
    finals = ", ".join(
        f"[{json.dumps(s.value)}] = true" for s in sorted(FINAL_STATUSES)
    )
    source = _LUA_COMMON + body
    source = source.replace("@FINAL@", finals)
    source = source.replace("@BUCKETS@", ", ".join(repr(b) for b in DURATION_BUCKETS))
    source = source.replace("@SORTS@", ", ".join(f"'{k.value}'" for k in _SCORED_SORTS))
    return source.replace("@STATS_TTL@", str(STATS_RETENTION_MINUTES * 60))


def _lua_apply(body: str) -> str:
    """Return a script that calls the apply function: apply, write or take."""
    return _lua(_LUA_APPLY_FUNCTION + body)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _score(value: float) -> str:
    return repr(float(value))


def _minute(timestamp: float) -> int:
    # The same formula as the scripts' math.floor(t / 60): float `//` can differ.
    return math.floor(timestamp / 60)


def _error_search_text(error: str | None) -> str:
    return "" if error is None else error[:ERROR_SEARCH_CHARS].casefold()


def _trigrams(text: str) -> list[str]:
    return sorted({text[i : i + 3] for i in range(len(text) - 2)})


def _parse_name_fields(fields: Iterable[bytes | str]) -> dict[str, set[TaskQueue]]:
    """Map each name to its queues, from ``<queue>:<name>`` fields of the names hash."""
    queues: dict[str, set[TaskQueue]] = {}
    for field in fields:
        queue, name = _text(field).split(":", 1)
        queues.setdefault(name, set()).add(TaskQueue(queue))
    return queues


#: The record fields `_sort_value` reads.
_SORT_FIELDS = (
    "created_at",
    "started_at",
    "finished_at",
    "attempts",
    "priority",
    "task_name",
    "queue",
    "status",
)


def _sort_value(values: dict[str, Any], key: TaskSort) -> tuple[int, Any]:
    """Return a record's `key` as a tuple that puts None below every value."""
    if key is TaskSort.DURATION:
        started, finished = values["started_at"], values["finished_at"]
        value = None if started is None or finished is None else finished - started
    else:
        value = values[{TaskSort.STARTED: "started_at"}.get(key, key.value)]
    return (0, 0) if value is None else (1, value)


def _fixes_key(task_filter: TaskFilter, key: TaskSort) -> bool:
    """Return whether the filter gives every match the same `key`."""
    if key is TaskSort.QUEUE:
        return task_filter.queue is not None
    if key is TaskSort.STATUS:
        return task_filter.status is not None
    if key is TaskSort.TASK_NAME:
        return task_filter.task_name is not None
    return False


def _parse_counts(stored: dict[Any, Any]) -> dict[TaskQueue, dict[TaskStatus, int]]:
    """Return the counters of the ``counts`` hash by queue and status, zeros left out."""
    counts: dict[TaskQueue, dict[TaskStatus, int]] = {}
    for field, value in stored.items():
        queue, status = _text(field).split(":", 1)
        number = int(value)
        if number:
            counts.setdefault(TaskQueue(queue), {})[TaskStatus(status)] = number
    return counts


def _recent_from(replies: Sequence[dict[Any, Any]], minutes: int) -> RecentStats:
    """Return the recent figures of the per-minute hashes of one queue, oldest first."""
    figures = [{_text(k): _text(v) for k, v in f.items()} for f in replies]
    throughput = [
        int(f.get("succeeded", 0)) + int(f.get("failed", 0))
        for f in figures[len(figures) - minutes :]
    ]
    hour = figures[-60:]
    histogram = [
        sum(int(f.get(f"b{i}", 0)) for f in hour)
        for i in range(len(DURATION_BUCKETS) + 1)
    ]
    duration_sum = sum(float(f.get("duration_sum", 0)) for f in hour)
    duration_count = sum(int(f.get("duration_count", 0)) for f in hour)
    return RecentStats(
        succeeded_last_hour=sum(int(f.get("succeeded", 0)) for f in hour),
        failed_last_hour=sum(int(f.get("failed", 0)) for f in hour),
        throughput_per_minute=throughput,
        mean_duration=duration_sum / duration_count if duration_count else None,
        p95_duration=percentile_from_histogram(histogram, 0.95),
    )


def _decode_pairs(flat: Sequence[bytes | str]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


@dataclasses.dataclass(frozen=True)
class QueueEntry:
    """A Huey message as stored in one of its sorted sets (queue or schedule)."""

    key: str
    member: bytes
    score: float


@dataclasses.dataclass(frozen=True)
class _Source:
    """A sorted set of candidates; members are checked against `queue` if set."""

    key: str
    queue: TaskQueue | None = None


@dataclasses.dataclass
class _Plan:
    """The matches of a filter: sorted sets to page through, and checked candidates.

    No task is in two sources, nor in a source and the candidates.
    """

    low: str
    high: str
    sources: list[_Source]
    candidates: list[tuple[float, str]] = dataclasses.field(default_factory=list)


class NotReplicatedError(redis.ConnectionError):
    """A write applied on the master, but too few replicas acknowledged it in time.

    A failover to a replica may then lose it, so its outcome is unknown.
    """


class RedisLedger(Ledger):
    """The ledger in one Redis database, shared by every process that uses it."""

    backend_name = "redis"

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        change_retention: int = 100_000,
        wait_replicas: int = 0,
        wait_timeout: float = 2.0,
    ) -> None:
        """Store the ledger under ``chenu:<namespace>:`` through `client`.

        Args:
            client: A client of one Redis server, version 6.2 or later (the
                change feed reads exclusive XRANGE bounds). It may be created
                with ``decode_responses`` true or false, because the ledger
                accepts bytes and str replies alike. The ledger takes
                ownership: `close` closes the client's connection pool.
            namespace: The name that separates installations sharing one
                database. It must be non-empty and contain no ``:``.
            change_retention: The minimum number of newest changes the feed
                keeps. Redis trims whole stream nodes, so it may keep up to one
                node more (100 entries under Redis's default
                stream-node-max-entries).
            wait_replicas: Replicas that must acknowledge each record write
                (Redis WAIT) before it returns; 0 waits for none.
            wait_timeout: Seconds a record write waits for them.
        """
        if not namespace or ":" in namespace:
            raise ValueError(
                f"invalid namespace {namespace!r}: use a non-empty name without ':'"
            )
        if change_retention < 1:
            raise ValueError(
                f"change_retention must be at least 1, not {change_retention}"
            )
        self._client = client
        self._prefix = f"chenu:{namespace}:"
        self._retention = change_retention
        self._wait_replicas = wait_replicas
        self._wait_timeout_ms = max(1, round(wait_timeout * 1000))
        self._insert_script = client.register_script(_lua(_LUA_INSERT))
        self._apply_script = client.register_script(_lua_apply(_LUA_APPLY))
        self._write_script = client.register_script(_lua_apply(_LUA_WRITE))
        self._take_script = client.register_script(_lua_apply(_LUA_TAKE))
        self._text_scan_script = client.register_script(_lua(_LUA_TEXT_SCAN))
        self._delete_script = client.register_script(_lua(_LUA_DELETE))
        self._sort_index_script = client.register_script(_lua(_LUA_SORT_INDEX))
        #: Whether `_build_missing_sort_indexes` has run; the first sorted
        #: read runs it, so that opening the ledger sends nothing to Redis.
        self._sort_indexes_checked = False

    # --- keys ------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    def _task_key(self, task_id: str) -> str:
        return self._key("task", task_id)

    def _index_key(
        self,
        status: TaskStatus | None = None,
        queue: TaskQueue | None = None,
        task_name: str | None = None,
    ) -> str:
        """Return the index of one status, queue or name, or of both with a status."""
        if task_name is not None:
            if status is None:
                return self._key("idx", "n", task_name)
            return self._key("idx", "ns", status.value, task_name)
        if queue is not None:
            if status is None:
                return self._key("idx", "q", queue.value)
            return self._key("idx", "qs", queue.value, status.value)
        if status is not None:
            return self._key("idx", "s", status.value)
        return self._key("idx", "all")

    def _common_args(self) -> list[str | int]:
        return [self._prefix, self._retention]

    def _sort_key(self, sort: TaskSort, status: TaskStatus | None) -> str:
        """Return the sort index of one key, for all records or one status.

        There are no indexes per queue: with 50,000 records, the queue and
        queue-and-status indexes of the four keys took 1.4 KB of Redis memory
        per record, as much as these two. A queue filter walks them instead.
        """
        if status is not None:
            return self._key("sort", sort.value, "s", status.value)
        return self._key("sort", sort.value, "all")

    def _build_missing_sort_indexes(self) -> None:
        """Add records stored before the sort indexes existed to those indexes.

        Every record is in the priority index once indexed, so a count that
        differs from the count of all records means some are missing. The
        index script is idempotent, which makes a run alongside other
        writers, or a second run from another process, harmless.
        """
        pipe = self._client.pipeline(transaction=True)
        pipe.zcard(self._key("idx", "all"))
        pipe.zcard(self._sort_key(TaskSort.PRIORITY, None))
        records, indexed = pipe.execute()
        if records == indexed:
            return
        logger.info(
            "adding %d records of %s to the sort indexes", records, self._prefix
        )
        members = (
            _text(member)
            for member, _ in self._client.zscan_iter(
                self._key("idx", "all"), count=_SCAN_CHUNK
            )
        )
        while batch := list(itertools.islice(members, _SCAN_CHUNK)):
            pipe = self._client.pipeline(transaction=False)
            for task_id in batch:
                self._sort_index_script(
                    [self._task_key(task_id)],
                    [*self._common_args(), task_id],
                    client=pipe,
                )
            pipe.execute()

    # --- records ---------------------------------------------------------

    def insert(self, record: TaskRecord, message: QueueEntry | None = None) -> None:
        """Store a new record; see `Ledger.insert`.

        With `message`, the same script adds the task's Huey message to its
        sorted set, so the record and the message are stored together or not
        at all.
        """
        queue = TaskQueue(record.queue)
        status = TaskStatus(record.status)
        if record.created_at is None:
            raise ValueError(f"invalid task {record.task_id!r}: created_at is None")
        encoded = encode_fields({name: getattr(record, name) for name in RECORD_FIELDS})
        finals_score = ""
        if status.is_final:
            finished = record.finished_at
            finals_score = _score(record.updated_at if finished is None else finished)
        trigrams = _trigrams(_error_search_text(record.error))
        args: list[Any] = [
            *self._common_args(),
            record.task_id,
            queue.value,
            status.value,
            record.task_name,
            _score(record.created_at),
            finals_score,
            _score(record.updated_at or record.created_at),
            json.dumps(trigrams) if trigrams else "",
            # One argument instead of a pair per field: the client packs each
            # argument in Python, which cost more than the script's decode.
            json.dumps(encoded, ensure_ascii=False, separators=(",", ":")),
            *trigrams,
        ]
        keys = [self._task_key(record.task_id)]
        if message is not None:
            keys.append(message.key)
            args += [message.member, _score(message.score)]
        if self._wait_replicas:
            pipe = self._client.pipeline(transaction=False)
            self._insert_script(keys, args, client=pipe)
            self._add_wait(pipe)
            inserted = self._check_replicated(pipe.execute(), record.task_id)[0]
        else:
            # One call, so that a ledger over a pipeline (the bench's loader)
            # queues the insert instead of sending it on its own.
            inserted = self._insert_script(keys, args)
        if not inserted:
            raise ValueError(f"task {record.task_id!r} exists already")

    def _add_wait(self, pipe: Any) -> None:
        """Queue a WAIT, so it runs on the connection that sent the writes."""
        if self._wait_replicas:
            pipe.execute_command("WAIT", self._wait_replicas, self._wait_timeout_ms)

    def _check_replicated(self, results: list[Any], task_id: str) -> list[Any]:
        """Return the write results without the WAIT reply, if enough replicas acked.

        Raises:
            NotReplicatedError: Fewer replicas than `wait_replicas` acknowledged.
        """
        if not self._wait_replicas:
            return results
        acknowledged = int(results[-1])
        if acknowledged < self._wait_replicas:
            raise NotReplicatedError(
                f"the write of task {task_id} reached {acknowledged} of "
                f"{self._wait_replicas} replicas within "
                f"{self._wait_timeout_ms} ms; it may be lost if the master fails"
            )
        return results[:-1]

    def get(self, task_id: str) -> TaskRecord | None:
        stored = self._client.hgetall(self._task_key(task_id))
        if not stored:
            return None
        return decode_record({_text(k): _text(v) for k, v in stored.items()})

    def _update_args(self, update: Update, now: str) -> list[Any]:
        """Build the apply script's arguments, with `now` as ``updated_at``."""
        fields = dict(update.fields)
        fields.pop("updated_at", None)
        increment = update.increment_attempts
        if increment and "attempts" in fields:
            # The increment applies to the new value, so the script need not add one.
            fields["attempts"] = fields["attempts"] + 1
            increment = False

        created_score = ""
        if "created_at" in fields:
            if fields["created_at"] is None:
                raise ValueError(
                    f"invalid update of task {update.task_id!r}: created_at is None"
                )
            created_score = _score(fields["created_at"])
        encoded = encode_fields(fields)
        trigrams = _trigrams(_error_search_text(fields.get("error")))

        expected = "*"
        if update.expected is not None:
            expected = ",".join(sorted(TaskStatus(s).value for s in update.expected))
        args: list[Any] = [
            *self._common_args(),
            update.task_id,
            now,
            "" if update.status is None else TaskStatus(update.status).value,
            expected,
            "1" if increment else "0",
            "1" if update.require_no_cancel else "0",
            created_score,
            "1" if "finished_at" in fields else "0",
            "1" if "error" in fields else "0",
            json.dumps(trigrams) if trigrams else "",
            len(encoded),
        ]
        for name, value in encoded.items():
            args += [name, value]
        return args + trigrams

    def apply(self, updates: Sequence[Update], now: float) -> list[TaskRecord | None]:
        results = self._run_updates(self._apply_script, updates, now)
        return [
            decode_record(_decode_pairs(flat)) if flat else None for flat in results
        ]

    def write(self, updates: Sequence[Update], now: float) -> None:
        self._run_updates(self._write_script, updates, now)

    def take(
        self, queue_key: str, message_name: str, worker_id: str, now: float
    ) -> tuple[bytes, TaskRecord | None] | None:
        """Pop the first message of a Huey queue and claim its task, in one script.

        Only a message of the Huey task `message_name` without an ETA is
        claimed. Returns None if the queue is empty, else the message (without
        Huey's prefix) and the claimed record. The record is None when the
        message is not claimed or the claim does not apply. The id of the
        task claimed last is kept for `last_taken`.
        """
        args = self._update_args(claim_update("", worker_id, now), _score(now))
        keys = [queue_key, self._key("taken", worker_id)]
        args.append(message_name)
        if self._wait_replicas:
            pipe = self._client.pipeline(transaction=False)
            self._take_script(keys, args, client=pipe)
            self._add_wait(pipe)
            reply = self._check_replicated(pipe.execute(), "(taken from a queue)")[0]
        else:
            # A script called on a pipeline costs a SCRIPT EXISTS round trip
            # first; called on its own, it is one EVALSHA.
            reply = self._take_script(keys, args)
        if not reply:
            return None
        data = reply[0] if isinstance(reply[0], bytes) else reply[0].encode()
        if len(reply) < 2:
            return data, None
        return data, decode_record(_decode_pairs(reply[1]))

    def last_taken(self, worker_id: str) -> str | None:
        """Return the id of the task `take` claimed last for this worker, if any.

        When the reply of a take is lost, this is the task it claimed, if any.
        """
        value = self._client.get(self._key("taken", worker_id))
        return None if value is None else _text(value)

    def _run_updates(
        self, script: Any, updates: Sequence[Update], now: float
    ) -> list[Any]:
        if not updates:
            return []
        stamp = _score(now)
        # Encode every update first, so an invalid one raises before any is sent.
        calls = [
            (self._task_key(u.task_id), self._update_args(u, stamp)) for u in updates
        ]
        if len(calls) == 1 and not self._wait_replicas:
            # One EVALSHA, without the SCRIPT EXISTS a pipeline sends first.
            key, args = calls[0]
            return [script([key], args)]
        pipe = self._client.pipeline(transaction=False)
        for key, args in calls:
            script([key], args, client=pipe)
        self._add_wait(pipe)
        return self._check_replicated(pipe.execute(), updates[0].task_id)

    def delete_finished_before(self, cutoff: float, limit: int = 1000) -> list[str]:
        if limit < 1:
            return []
        members = self._client.zrangebyscore(
            self._key("finals"), "-inf", f"({_score(cutoff)}", start=0, num=limit
        )
        if not members:
            return []
        task_ids = [_text(m) for m in members]
        args = [*self._common_args(), "", _score(cutoff), _score(time.time())]
        pipe = self._client.pipeline(transaction=False)
        for task_id in task_ids:
            args[2] = task_id
            self._delete_script([self._task_key(task_id)], list(args), client=pipe)
        deleted = pipe.execute()
        return [task_id for task_id, done in zip(task_ids, deleted) if done]

    # --- listing ---------------------------------------------------------

    def list_tasks(
        self,
        task_filter: TaskFilter,
        limit: int = 50,
        offset: int = 0,
        ascending: bool = False,
        sort: TaskSort = TaskSort.CREATED,
    ) -> list[TaskRecord]:
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must be >= 0, not {limit} and {offset}")
        key = check_sort(self, sort)
        if limit == 0:
            return []
        if key is not TaskSort.CREATED and not _fixes_key(task_filter, key):
            return self._fetch_records(
                self._sorted_page(task_filter, key, offset, limit, ascending)
            )
        if task_filter.text:
            found = self._text_scan(task_filter, offset, limit, ascending)
            if found is not None:
                return self._fetch_records(found)
        plan = self._plan(task_filter)
        return self._fetch_records(self._page(plan, offset, limit, ascending))

    def _text_scan(
        self, task_filter: TaskFilter, offset: int, limit: int, ascending: bool
    ) -> list[str] | None:
        """Return the ids of a text-filtered page from the newest records, or None.

        The text plan reads every task whose error contains the text's
        trigrams (about a second for 33,000 such tasks in the bench), so a
        script first reads the newest TEXT_SCAN_ROWS records that pass the
        other criteria and tests each. If they contain the page, or are all
        there is, no other record can belong to it. Otherwise the caller gets
        None and takes the text plan. Only ASCII text and filters served by
        one index take this path.
        """
        text = task_filter.text or ""
        if not text.isascii():
            return None
        plan = self._plan(dataclasses.replace(task_filter, text=None))
        if len(plan.sources) != 1 or plan.sources[0].queue is not None:
            return None
        need = offset + limit
        folded = text.casefold()
        task_ids, flags, complete = self._text_scan_script(
            [plan.sources[0].key],
            [
                *self._common_args(),
                plan.low,
                plan.high,
                "1" if ascending else "0",
                need,
                TEXT_SCAN_ROWS,
                _TEXT_SCAN_CHUNK,
                text,
                folded,
                "1" if len(folded) >= 3 else "0",
                ERROR_SEARCH_CHARS,
            ],
        )
        task_ids = [_text(task_id) for task_id in task_ids]
        undecided = [
            task_id for task_id, flag in zip(task_ids, _text(flags)) if flag == "?"
        ]
        folds = self._fold_matches(undecided, folded)
        found = [task_id for task_id in task_ids if folds.get(task_id, True)]
        if len(found) >= need or complete:
            return found[offset:need]
        return None

    def _fold_matches(self, task_ids: list[str], folded: str) -> dict[str, bool]:
        """Test tasks with non-ASCII names or errors as the text plan does."""
        if not task_ids:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hmget(self._task_key(task_id), ("task_name", "error"))
        matches = {}
        for task_id, (name, error) in zip(task_ids, pipe.execute()):
            matches[task_id] = name is not None and (
                folded in json.loads(name).casefold()
                or (
                    len(folded) >= 3 and folded in _error_search_text(json.loads(error))
                )
            )
        return matches

    def task_ids(self, status: TaskStatus, limit: int) -> list[str]:
        if limit < 1:
            return []
        return self._page(self._plan(TaskFilter(status=TaskStatus(status))), 0, limit)

    def _sorted_page(
        self,
        task_filter: TaskFilter,
        key: TaskSort,
        offset: int,
        limit: int,
        ascending: bool,
    ) -> list[str]:
        """Return the ids of one page in the order of a key other than creation."""
        if not self._sort_indexes_checked:
            self._build_missing_sort_indexes()
            self._sort_indexes_checked = True
        by_status_and_queue = task_filter.text is None and task_filter.task_name is None
        timeless = (
            task_filter.created_after is None and task_filter.created_before is None
        )
        if key in _SCORED_SORTS and by_status_and_queue and timeless:
            index = self._sort_key(key, task_filter.status)
            if task_filter.queue is not None:
                if self._match_count(task_filter) <= SMALL_SORT_SET:
                    return self._sorted_matches(task_filter, key, ascending)[
                        offset : offset + limit
                    ]
                return self._walk_queue(
                    index, task_filter.queue, offset, limit, ascending
                )
            last = offset + limit - 1
            if ascending:
                members = self._client.zrange(index, offset, last)
            else:
                members = self._client.zrevrange(index, offset, last)
            return [_text(m)[_ORDER_KEY_DIGITS:] for m in members]
        if key in (TaskSort.QUEUE, TaskSort.STATUS) and by_status_and_queue:
            return self._segment_page(task_filter, key, offset, limit, ascending)
        if key is TaskSort.TASK_NAME and task_filter.text is None:
            return self._segment_page(task_filter, key, offset, limit, ascending)
        return self._sorted_matches(task_filter, key, ascending)[
            offset : offset + limit
        ]

    def _match_count(self, task_filter: TaskFilter) -> int:
        """Return the records of the filter's queue and status, from the counters."""
        total = 0
        for queue, by_status in self.status_counts().items():
            if task_filter.queue is not None and queue is not task_filter.queue:
                continue
            for status, count in by_status.items():
                if task_filter.status is None or status is task_filter.status:
                    total += count
        return total

    def _walk_queue(
        self, index: str, queue: TaskQueue, offset: int, limit: int, ascending: bool
    ) -> list[str]:
        """Return one page of `index` that keeps the members of `queue` only.

        Reads the index in order, a chunk at a time, with the queue of each
        member. A queue that has a share of the records costs about the page
        size divided by that share in reads.
        """
        expected = encode_json(queue.value)
        ids: list[str] = []
        skip = offset
        start = 0
        while len(ids) < limit:
            stop = start + _SCAN_CHUNK - 1
            if ascending:
                members = self._client.zrange(index, start, stop)
            else:
                members = self._client.zrevrange(index, start, stop)
            if not members:
                break
            candidates = [_text(m)[_ORDER_KEY_DIGITS:] for m in members]
            pipe = self._client.pipeline(transaction=False)
            for task_id in candidates:
                pipe.hget(self._task_key(task_id), "queue")
            for task_id, stored in zip(candidates, pipe.execute()):
                if stored is None or _text(stored) != expected:
                    continue
                if skip:
                    skip -= 1
                    continue
                ids.append(task_id)
                if len(ids) == limit:
                    break
            start += _SCAN_CHUNK
        return ids

    def _segments(self, task_filter: TaskFilter, key: TaskSort) -> list[_Source]:
        """Return the creation-time indexes of each value of `key`, in value order."""
        if key is TaskSort.QUEUE:
            queues = sorted(TaskQueue, key=lambda q: q.value)
            return [_Source(self._index_key(task_filter.status, q)) for q in queues]
        if key is TaskSort.STATUS:
            statuses = sorted(TaskStatus, key=lambda s: s.value)
            return [_Source(self._index_key(s, task_filter.queue)) for s in statuses]
        queues = _parse_name_fields(self._client.hkeys(self._key("names")))
        segments = []
        for name in sorted(queues):
            source = self._name_source(task_filter, name, queues)
            if source is not None:
                segments.append(source)
        return segments

    def _segment_page(
        self,
        task_filter: TaskFilter,
        key: TaskSort,
        offset: int,
        limit: int,
        ascending: bool,
    ) -> list[str]:
        """Return one page of the segments of `key`, read one after the other.

        Each segment is ordered by creation time, so the page follows the
        key, then the creation time, then the id.
        """
        plan = self._plan(task_filter)
        segments = self._segments(task_filter, key)
        if not ascending:
            segments.reverse()
        pipe = self._client.pipeline(transaction=False)
        for segment in segments:
            if segment.queue is None:
                pipe.zcount(segment.key, plan.low, plan.high)
        counts = iter(pipe.execute())
        ids: list[str] = []
        skip = offset
        for segment in segments:
            if len(ids) >= limit:
                break
            if segment.queue is not None:
                # Members of a name in several queues are checked one by one.
                scanned = self._scan(segment, plan, None, ascending)
                taken = scanned[skip : skip + limit - len(ids)]
                ids += [task_id for _, task_id in taken]
                skip = max(0, skip - len(scanned))
                continue
            size = next(counts)
            if skip >= size:
                skip -= size
                continue
            batch = self._range(segment.key, plan, skip, limit - len(ids), ascending)
            ids += [_text(member) for member, _ in batch]
            skip = 0
        return ids

    def _sorted_matches(
        self, task_filter: TaskFilter, key: TaskSort, ascending: bool
    ) -> list[str]:
        """Return the ids of every match, sorted by `key` here in Python.

        NOTE: this reads every match and its sort value, so it costs one read
        per matching record. It serves only a text, a name or a time range
        combined with a scored key, and a text with a text key.
        """
        entries = self._all_matches(self._plan(task_filter))
        pipe = self._client.pipeline(transaction=False)
        for task_id in entries:
            pipe.hmget(self._task_key(task_id), _SORT_FIELDS)
        ordered = []
        for task_id, raw in zip(entries, pipe.execute()):
            if raw[0] is None:
                continue  # deleted since the index was read
            values = dict(zip(_SORT_FIELDS, (json.loads(_text(v)) for v in raw)))
            ordered.append((_sort_value(values, key), values["created_at"], task_id))
        ordered.sort(reverse=not ascending)
        return [task_id for _, _, task_id in ordered]

    def count_tasks(self, task_filter: TaskFilter) -> int:
        plan = self._plan(task_filter)
        total = len(plan.candidates)
        pipe = self._client.pipeline(transaction=False)
        for source in plan.sources:
            if source.queue is None:
                pipe.zcount(source.key, plan.low, plan.high)
            else:
                total += len(self._scan(source, plan, None))
        return total + sum(pipe.execute())

    def _plan(self, task_filter: TaskFilter) -> _Plan:
        low = "-inf"
        if task_filter.created_after is not None:
            low = _score(task_filter.created_after)
        high = "+inf"
        if task_filter.created_before is not None:
            high = _score(task_filter.created_before)
        plan = _Plan(low, high, [])
        if task_filter.text:
            self._plan_text(plan, task_filter)
        elif task_filter.task_name is not None:
            name = task_filter.task_name
            queues = {} if task_filter.queue is None else self._name_queues(name)
            source = self._name_source(task_filter, name, queues)
            if source is not None:
                plan.sources.append(source)
        else:
            key = self._index_key(task_filter.status, task_filter.queue)
            plan.sources.append(_Source(key))
        return plan

    def _name_queues(self, name: str) -> dict[str, set[TaskQueue]]:
        """Return the queues holding records of `name`."""
        fields = [f"{queue.value}:{name}" for queue in TaskQueue]
        found = self._client.hmget(self._key("names"), fields)
        present = [field for field, count in zip(fields, found) if count is not None]
        return _parse_name_fields(present)

    def _name_source(
        self, task_filter: TaskFilter, name: str, queues: dict[str, set[TaskQueue]]
    ) -> _Source | None:
        key = self._index_key(task_filter.status, task_name=name)
        queue = task_filter.queue
        if queue is None:
            return _Source(key)
        name_queues = queues.get(name, set())
        if queue not in name_queues:
            return None
        if name_queues == {queue}:
            return _Source(key)
        # Records of this name sit in several queues: check each member's queue.
        return _Source(key, queue)

    def _plan_text(self, plan: _Plan, task_filter: TaskFilter) -> None:
        """Add the sources and candidates of a filter with a text.

        NOTE: every task whose id starts with the text, or whose error contains
        all its trigrams, is read once to check it, so a short id prefix or a
        common word costs one read per such task (in one pipeline).
        """
        text = task_filter.text or ""
        folded = text.casefold()
        pipe = self._client.pipeline(transaction=False)
        pipe.hkeys(self._key("names"))
        prefix = text.encode()
        # No UTF-8 string contains the byte 0xff, so it bounds every id with the prefix.
        pipe.zrangebylex(self._key("ids"), b"[" + prefix, b"[" + prefix + b"\xff")
        trigrams = _trigrams(folded)
        if trigrams:
            pipe.sinter([self._key("tri", t) for t in trigrams])
        replies = pipe.execute()

        queues = _parse_name_fields(replies[0])
        matched = {name for name in queues if folded in name.casefold()}
        if task_filter.task_name is not None:
            matched &= {task_filter.task_name}
        for name in sorted(matched):
            source = self._name_source(task_filter, name, queues)
            if source is not None:
                plan.sources.append(source)

        by_id = {_text(m) for m in replies[1]}
        by_error = {_text(m) for m in replies[2]} - by_id if trigrams else set()
        self._add_candidates(plan, task_filter, matched, by_id, by_error, folded)

    def _add_candidates(
        self,
        plan: _Plan,
        task_filter: TaskFilter,
        matched_names: set[str],
        by_id: set[str],
        by_error: set[str],
        folded: str,
    ) -> None:
        """Check text candidates against the other criteria and add those that pass."""
        task_ids = sorted(by_id | by_error)
        pipe = self._client.pipeline(transaction=False)
        columns = ("created_at", "status", "queue", "task_name", "error")
        for task_id in task_ids:
            pipe.hmget(self._task_key(task_id), columns)
        low, high = float(plan.low), float(plan.high)
        for task_id, raw in zip(task_ids, pipe.execute()):
            if raw[0] is None:
                continue
            created, status, queue, name, error = (json.loads(_text(v)) for v in raw)
            if name in matched_names:
                continue  # a name source contains it already, if it matches
            if task_filter.status is not None and status != task_filter.status.value:
                continue
            if task_filter.queue is not None and queue != task_filter.queue.value:
                continue
            if task_filter.task_name is not None and name != task_filter.task_name:
                continue
            if not low <= created <= high:
                continue
            if task_id in by_error and folded not in _error_search_text(error):
                continue
            plan.candidates.append((created, task_id))

    def _scan(
        self, source: _Source, plan: _Plan, need: int | None, ascending: bool = False
    ) -> list[tuple[float, str]]:
        """Return up to `need` members of `source` in its queue, newest first.

        With `ascending`, return the oldest members, oldest first.
        """
        found: list[tuple[float, str]] = []
        start = 0
        chunk = max(_SCAN_CHUNK, need or 0)
        expected = encode_json(source.queue.value if source.queue else None)
        while need is None or len(found) < need:
            batch = self._range(source.key, plan, start, chunk, ascending)
            pipe = self._client.pipeline(transaction=False)
            for member, _ in batch:
                pipe.hget(self._task_key(_text(member)), "queue")
            queues = pipe.execute() if batch else []
            for (member, score), queue in zip(batch, queues):
                if queue is not None and _text(queue) == expected:
                    found.append((score, _text(member)))
            if len(batch) < chunk:
                break
            start += chunk
        return found if need is None else found[:need]

    def _range(
        self,
        key: str,
        plan: _Plan,
        start: int,
        count: int,
        ascending: bool,
        client: Any = None,
    ) -> Any:
        """Read `count` members with scores of one index from `start`, in order.

        Members of equal score come in member order, ascending or descending
        like the scores, which orders ties by task id as `list_tasks` promises.
        `client` may be a pipeline, which queues the read instead.
        """
        if client is None:
            client = self._client
        if ascending:
            return client.zrangebyscore(
                key, plan.low, plan.high, start=start, num=count, withscores=True
            )
        return client.zrevrangebyscore(
            key, plan.high, plan.low, start=start, num=count, withscores=True
        )

    def _page(
        self, plan: _Plan, offset: int, limit: int, ascending: bool = False
    ) -> list[str]:
        """Return the ids of one page of the plan, newest first unless `ascending`."""
        sources = plan.sources
        if len(sources) == 1 and sources[0].queue is None and not plan.candidates:
            batch = self._range(sources[0].key, plan, offset, limit, ascending)
            return [_text(member) for member, _ in batch]
        # Each source's first offset + limit members include its part of the page.
        need = offset + limit
        entries = list(plan.candidates)
        pipe = self._client.pipeline(transaction=False)
        for source in sources:
            if source.queue is None:
                self._range(source.key, plan, 0, need, ascending, client=pipe)
            else:
                entries += self._scan(source, plan, need, ascending)
        for batch in pipe.execute():
            entries += [(score, _text(member)) for member, score in batch]
        entries.sort(reverse=not ascending)
        return [task_id for _, task_id in entries[offset:need]]

    def _all_matches(self, plan: _Plan) -> list[str]:
        """Return the ids of every match of the plan, in no particular order."""
        task_ids = [task_id for _, task_id in plan.candidates]
        pipe = self._client.pipeline(transaction=False)
        for source in plan.sources:
            if source.queue is None:
                pipe.zrangebyscore(source.key, plan.low, plan.high)
            else:
                task_ids += [task_id for _, task_id in self._scan(source, plan, None)]
        for members in pipe.execute():
            task_ids += [_text(member) for member in members]
        return task_ids

    def _fetch_records(self, task_ids: list[str]) -> list[TaskRecord]:
        if not task_ids:
            return []
        pipe = self._client.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hgetall(self._task_key(task_id))
        records = []
        for stored in pipe.execute():
            if stored:  # deleted since the index was read
                records.append(
                    decode_record({_text(k): _text(v) for k, v in stored.items()})
                )
        return records

    # --- counters and figures --------------------------------------------

    def status_counts(self) -> dict[TaskQueue, dict[TaskStatus, int]]:
        return _parse_counts(self._client.hgetall(self._key("counts")))

    def oldest_created(self, queue: TaskQueue, status: TaskStatus) -> float | None:
        oldest = self._client.zrange(
            self._index_key(status, queue), 0, 0, withscores=True
        )
        return oldest[0][1] if oldest else None

    def recent_stats(
        self, queue: TaskQueue, now: float, minutes: int = 15
    ) -> RecentStats:
        if minutes < 0:
            raise ValueError(f"minutes must be >= 0, not {minutes}")
        pipe = self._client.pipeline(transaction=False)
        self._queue_minutes(pipe, queue, now, minutes)
        return _recent_from(pipe.execute(), minutes)

    def _queue_minutes(
        self, pipe: Any, queue: TaskQueue, now: float, minutes: int
    ) -> int:
        """Queue the reads of a queue's per-minute hashes, oldest first, on `pipe`.

        Returns the number of reads queued.
        """
        current = _minute(now)
        span = max(minutes, 60)
        for minute in range(current - span + 1, current + 1):
            pipe.hgetall(self._key("stats", queue.value, str(minute)))
        return span

    def queue_stats(
        self,
        now: float,
        workers: Sequence[WorkerInfo],
        paused: Collection[TaskQueue],
    ) -> dict[TaskQueue, QueueStats]:
        # Every read in one round trip, where the generic version takes eleven.
        minutes = 15
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(self._key("counts"))
        per_queue = 0
        for queue in TaskQueue:
            pipe.zrange(
                self._index_key(TaskStatus.PENDING, queue), 0, 0, withscores=True
            )
            per_queue = 1 + self._queue_minutes(pipe, queue, now, minutes)
        replies = pipe.execute()
        counts = _parse_counts(replies[0])
        stats: dict[TaskQueue, QueueStats] = {}
        for index, queue in enumerate(TaskQueue):
            first = 1 + index * per_queue
            oldest_reply = replies[first]
            recent = _recent_from(replies[first + 1 : first + per_queue], minutes)
            oldest = oldest_reply[0][1] if oldest_reply else None
            stats[queue] = queue_stats_of(
                queue, counts, recent, oldest, now, workers, paused
            )
        return stats

    # --- change feed -----------------------------------------------------

    def changes(self, since: int, limit: int = 1000) -> ChangeBatch:
        if since < 0 or limit < 1:
            raise ValueError(
                f"since must be >= 0 and limit >= 1, not {since} and {limit}"
            )
        pipe = self._client.pipeline(transaction=True)
        pipe.get(self._key("seq"))
        pipe.xrange(self._key("changes"), min=f"(0-{since}", count=limit)
        last_raw, entries = pipe.execute()
        last = int(last_raw or 0)
        changes = [
            self._decode_change(entry_id, fields) for entry_id, fields in entries
        ]
        # Sequence numbers have no gaps, so a missing since + 1 was trimmed.
        reset = since < last and (not changes or changes[0].seq > since + 1)
        # A number past the end means the feed was wiped or belongs elsewhere.
        reset = reset or since > last
        return ChangeBatch(changes, changes[-1].seq if changes else last, reset)

    @staticmethod
    def _decode_change(entry_id: bytes | str, raw: dict[Any, Any]) -> Change:
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return Change(
            seq=int(_text(entry_id).split("-", 1)[1]),
            task_id=fields["task_id"],
            queue=TaskQueue(fields["queue"]),
            status=TaskStatus(fields["status"]),
            at=float(fields["at"]),
            deleted=fields["deleted"] == "1",
        )

    def last_seq(self) -> int:
        return int(self._client.get(self._key("seq")) or 0)

    # --- workers and queue control --------------------------------------

    def put_heartbeats(self, workers: Iterable[WorkerInfo], ttl: float) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, not {ttl}")
        pipe = self._client.pipeline(transaction=True)
        for worker in workers:
            key = self._key("worker", worker.worker_id)
            pipe.delete(key)
            pipe.hset(key, mapping=encode_fields(dataclasses.asdict(worker)))
            # Redis drops the hash by its own clock, but `list_workers` compares
            # the stored expiry with the caller's `now`.
            pipe.pexpire(key, math.ceil(ttl * 1000))
            pipe.zadd(self._key("workers"), {worker.worker_id: worker.last_beat + ttl})
        pipe.execute()

    def list_workers(self, now: float) -> list[WorkerInfo]:
        workers_key = self._key("workers")
        pipe = self._client.pipeline(transaction=True)
        pipe.zrangebyscore(workers_key, f"({_score(now)}", "+inf")
        pipe.zremrangebyscore(workers_key, "-inf", _score(now))
        worker_ids = [_text(m) for m in pipe.execute()[0]]
        pipe = self._client.pipeline(transaction=False)
        for worker_id in worker_ids:
            pipe.hgetall(self._key("worker", worker_id))
        workers = []
        for stored in pipe.execute():
            if not stored:  # expired in Redis before its score passed
                continue
            values = {_text(k): json.loads(_text(v)) for k, v in stored.items()}
            values = {k: v for k, v in values.items() if k in _WORKER_FIELDS}
            values["queue"] = TaskQueue(values["queue"])
            workers.append(WorkerInfo(**values))
        return sorted(workers, key=lambda w: w.worker_id)

    def remove_workers(self, worker_ids: Collection[str]) -> None:
        if not worker_ids:
            return
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(*(self._key("worker", w) for w in worker_ids))
        pipe.zrem(self._key("workers"), *worker_ids)
        pipe.execute()

    def set_paused(self, queue: TaskQueue, paused: bool) -> None:
        if paused:
            self._client.sadd(self._key("paused"), queue.value)
        else:
            self._client.srem(self._key("paused"), queue.value)

    def paused_queues(self) -> set[TaskQueue]:
        return {TaskQueue(_text(m)) for m in self._client.smembers(self._key("paused"))}

    # --- lifetime -------------------------------------------------------

    def close(self) -> None:
        self._client.close()
        self._client.connection_pool.disconnect()
