"""Which servers a process owns: Discord's shard rule, as plain data.

Discord sends a server's events to shard ``(server_id >> 22) % shard_count`` and direct
messages to shard 0. A process runs some of the shards and owns exactly their servers'
sessions: it restores, times and shows only those.
"""

from __future__ import annotations

from dataclasses import dataclass


def shard_of(server_id: str | None, count: int) -> int:
    """The shard a server's events arrive on (direct messages, with no server: 0)."""
    return 0 if server_id is None else (int(server_id) >> 22) % count


@dataclass(frozen=True, slots=True)
class Shards:
    """The shards one process runs (`ids`), of `count` in all."""

    count: int = 1
    ids: tuple[int, ...] = (0,)

    @classmethod
    def of(cls, count: int, ids: tuple[int, ...] | None = None) -> Shards:
        """`ids` of `count` shards; every shard when `ids` is None."""
        return cls(count, tuple(sorted(set(range(count) if ids is None else ids))))

    @property
    def every(self) -> bool:
        """Whether this process runs every shard (it owns everything)."""
        return self.ids == tuple(range(self.count))

    def owns(self, server_id: str | None) -> bool:
        return shard_of(server_id, self.count) in self.ids

    def __str__(self) -> str:
        plural = "s" if len(self.ids) > 1 else ""
        return f"shard{plural} {','.join(map(str, self.ids))} of {self.count}"
