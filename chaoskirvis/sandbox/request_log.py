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
    """The latest `limit` entries; indexes count every entry ever appended (0 is the first).

    The sandbox's thread appends while a test's thread reads: each entry is kept with its number, so a
    `snapshot` (one copy of the deque, which the GIL makes atomic) is consistent on its own."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._entries: deque[tuple[int, Entry]] = deque(maxlen=limit)
        self._appended = 0

    def append(self, entry: Entry) -> None:
        self._entries.append((self._appended, entry))
        self._appended += 1

    @property
    def first_retained(self) -> int:
        """The index of the oldest entry still kept."""
        return self._entries[0][0] if self._entries else self._appended

    def __len__(self) -> int:
        return self._appended

    def __iter__(self) -> Iterator[Entry]:
        return (entry for _, entry in list(self._entries))

    @overload
    def __getitem__(self, index: int) -> Entry: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...

    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        """An entry by its index (negative: from the end), or the retained entries of a slice."""
        if isinstance(index, slice):
            start, stop, step = index.indices(self._appended)
            wanted = range(start, stop, step)
            found = [entry for number, entry in list(self._entries) if number in wanted]
            return found if step > 0 else found[::-1]
        position = index if index >= 0 else self._appended + index
        if not self.first_retained <= position < self._appended:
            raise IndexError(f"request {index} is not retained (the log keeps the latest {self._entries.maxlen})")
        return self._entries[position - self.first_retained][1]

    def snapshot(self) -> RequestLog[Entry]:
        """A copy that later entries do not change."""
        entries = list(self._entries)
        copy: RequestLog[Entry] = RequestLog(self._entries.maxlen or DEFAULT_LIMIT)
        copy._entries.extend(entries)
        copy._appended = entries[-1][0] + 1 if entries else self._appended
        return copy
