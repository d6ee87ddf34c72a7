"""The audit trail in Redis, under the namespace of the ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator

import redis

from .store import AuditEntry, AuditFilter, AuditStore

#: Entries read per round trip while a filtered listing scans the trail.
SCAN_BATCH = 500

# Takes the next id and stores the entry under it in one step, so ids and the
# order of the sorted set agree even with several writers. The id is spliced
# into the JSON text instead of re-encoding it, because Lua's cjson would
# round the timestamp to 14 digits.
_APPEND = """
local id = redis.call('INCR', KEYS[1])
local member = '{"entry_id":' .. id .. ',' .. string.sub(ARGV[1], 2)
redis.call('ZADD', KEYS[2], id, member)
return id
"""


class RedisAuditStore(AuditStore):
    """Audit entries as JSON members of one sorted set, scored by their id.

    NOTE: Redis cannot reject a DEL or ZREM from another client. Append-only
    means that this store never issues one. Filtered listings and counts scan the entries on
    the client, which suits the volume of operator actions (thousands), not
    millions.
    """

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._client = client
        self._prefix = f"chenu:{namespace}:audit"
        self._append = client.register_script(_APPEND)

    def _key(self, name: str) -> str:
        return f"{self._prefix}:{name}"

    def append(self, entry: AuditEntry) -> AuditEntry:
        fields = entry.to_dict()
        del fields["entry_id"]
        body = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
        entry_id = int(
            self._append(keys=[self._key("seq"), self._key("entries")], args=[body])
        )
        return AuditEntry(**{**entry.to_dict(), "entry_id": entry_id})

    def _newest_first(self) -> Iterator[AuditEntry]:
        """Yield every entry, newest first, reading `SCAN_BATCH` at a time."""
        key = self._key("entries")
        upper = "+inf"
        while True:
            members = self._client.zrevrangebyscore(
                key, upper, "-inf", start=0, num=SCAN_BATCH
            )
            for member in members:
                yield AuditEntry.from_json(member)
            if len(members) < SCAN_BATCH:
                return
            upper = f"({AuditEntry.from_json(members[-1]).entry_id}"

    def list_entries(
        self, entry_filter: AuditFilter, limit: int, offset: int = 0
    ) -> list[AuditEntry]:
        if entry_filter == AuditFilter():
            members = self._client.zrevrangebyscore(
                self._key("entries"), "+inf", "-inf", start=offset, num=limit
            )
            return [AuditEntry.from_json(member) for member in members]
        page: list[AuditEntry] = []
        skipped = 0
        for entry in self._newest_first():
            if not entry_filter.matches(entry):
                continue
            if skipped < offset:
                skipped += 1
                continue
            page.append(entry)
            if len(page) == limit:
                break
        return page

    def count_entries(self, entry_filter: AuditFilter) -> int:
        if entry_filter == AuditFilter():
            return int(self._client.zcard(self._key("entries")))
        return sum(1 for entry in self._newest_first() if entry_filter.matches(entry))

    def last_id(self) -> int:
        newest = self._client.zrevrange(self._key("entries"), 0, 0, withscores=True)
        return int(newest[0][1]) if newest else 0

    def close(self) -> None:
        self._client.connection_pool.disconnect()
