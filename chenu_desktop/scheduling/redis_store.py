"""Schedules in Redis, shared by every machine on the backend."""

from __future__ import annotations

import redis

from .store import ScheduleEvent, ScheduleRecord, ScheduleStore

#: History entries kept per schedule.
HISTORY_LIMIT = 1000
#: Seconds a fire claim is kept; far longer than any scheduler outage it must cover.
FIRE_CLAIM_TTL = 35 * 86400

_RENEW_LEASE = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""

_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisScheduleStore(ScheduleStore):
    """Schedules as JSON in one hash; fire claims are ``SET NX`` keys.

    The lease is a key with a TTL that only its holder renews or deletes.
    """

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._client = client
        self._prefix = f"chenu:{namespace}:schedules"
        self._renew = client.register_script(_RENEW_LEASE)
        self._release = client.register_script(_RELEASE_LEASE)

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    def add(self, record: ScheduleRecord) -> bool:
        added = self._client.hsetnx(self._key("all"), record.name, record.to_json())
        if added:
            self._client.incr(self._key("version"))
        return bool(added)

    def get(self, name: str) -> ScheduleRecord | None:
        data = self._client.hget(self._key("all"), name)
        return None if data is None else ScheduleRecord.from_json(data)

    def list(self) -> list[ScheduleRecord]:
        values = self._client.hgetall(self._key("all"))
        records = [ScheduleRecord.from_json(v) for v in values.values()]
        return sorted(records, key=lambda r: r.name)

    def put(self, record: ScheduleRecord) -> bool:
        key = self._key("all")
        with self._client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    if not pipe.hexists(key, record.name):
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.hset(key, record.name, record.to_json())
                    pipe.incr(self._key("version"))
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def remove(self, name: str) -> bool:
        with self._client.pipeline() as pipe:
            pipe.hdel(self._key("all"), name)
            pipe.delete(self._key("history", name))
            pipe.incr(self._key("version"))
            removed, _, _ = pipe.execute()
        return bool(removed)

    def claim_fire(self, name: str, fire_at: float) -> bool:
        key = self._key("fire", name, repr(fire_at))
        return bool(self._client.set(key, b"1", nx=True, ex=FIRE_CLAIM_TTL))

    def add_event(self, event: ScheduleEvent) -> None:
        key = self._key("history", event.schedule)
        with self._client.pipeline() as pipe:
            pipe.lpush(key, event.to_json())
            pipe.ltrim(key, 0, HISTORY_LIMIT - 1)
            pipe.execute()

    def history(self, name: str, limit: int = 100) -> list[ScheduleEvent]:
        items = self._client.lrange(self._key("history", name), 0, limit - 1)
        return [ScheduleEvent.from_json(item) for item in items]

    def acquire_lease(self, holder: str, ttl: float, now: float) -> bool:
        return bool(
            self._renew(keys=[self._key("lease")], args=[holder, int(ttl * 1000)])
        )

    def release_lease(self, holder: str) -> None:
        self._release(keys=[self._key("lease")], args=[holder])

    def version(self) -> int:
        value = self._client.get(self._key("version"))
        return 0 if value is None else int(value)

    def mark_seeded(self, key: str) -> bool:
        return bool(self._client.set(self._key("seeded", key), b"1", nx=True))

    def close(self) -> None:
        self._client.connection_pool.disconnect()
