"""The sandbox's request log: the latest requests it answered, numbered for the sandbox's whole life.

A sandbox under load answers hundreds of thousands of requests; keeping each of them would grow without
bound (224 MiB after loading 10,000 objects). The log keeps the latest `limit` entries (10,000 by default)
and counts every entry it was given, so `len(log)` is how many requests were answered and `log[seen:]`
is what was answered since `len(log)` was `seen`, as long as those entries are still retained.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import overload

DEFAULT_LIMIT = 10_000


class RequestLog[Entry]:
    """The latest `limit` entries; indexes count every entry ever appended (0 is the first)."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._entries: deque[Entry] = deque(maxlen=limit)
        self._appended = 0

    def append(self, entry: Entry) -> None:
        self._entries.append(entry)
        self._appended += 1

    @property
    def first_retained(self) -> int:
        """The index of the oldest entry still kept."""
        return self._appended - len(self._entries)

    def __len__(self) -> int:
        return self._appended

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    @overload
    def __getitem__(self, index: int) -> Entry: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...

    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        """An entry by its index (negative: from the end), or the retained entries of a slice."""
        if isinstance(index, slice):
            start, stop, step = index.indices(self._appended)
            first, retained = self.first_retained, list(self._entries)
            return [retained[i - first] for i in range(start, stop, step) if i >= first]
        position = index if index >= 0 else self._appended + index
        if not self.first_retained <= position < self._appended:
            raise IndexError(f"request {index} is not retained (the log keeps the latest {self._entries.maxlen})")
        return self._entries[position - self.first_retained]

    def snapshot(self) -> RequestLog[Entry]:
        """A copy that later entries do not change."""
        copy: RequestLog[Entry] = RequestLog(self._entries.maxlen or DEFAULT_LIMIT)
        copy._entries.extend(self._entries)
        copy._appended = self._appended
        return copy
