"""Download counting: how a share link meters the bytes `serve_file` sends it."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from stario import Writer


@dataclass(frozen=True, slots=True)
class Counting:
    """How a share link meters what it sends (serve_file calls these).

    `reserve(length)` is awaited before the body of every GET (a range or the whole
    file, `length` bytes); False refuses it (`refusal` says why, in words). When a
    granted response ends, however it ends, `settle(length, sent)` is awaited with
    the bytes it really wrote.

    `limited`: the link has a download limit, so every byte must leave through the
    node (a direct download, a 302 to the store, could not be counted as it leaves);
    a link without one may send its files from the store, and the node settles what
    it handed out as sent (docs/direct-transfers.md, "Downloads")."""

    reserve: Callable[[int], Awaitable[bool]]
    settle: Callable[[int, int], Awaitable[None]]
    refusal: Callable[[Writer, int], None]
    limited: bool = True


class MeteredWriter:
    """The response's Writer, counting the body bytes handed to it: what a share link
    charges for a response cut off midway. Only share downloads pay for the wrapper."""

    def __init__(self, w: Writer) -> None:
        self._w = w
        self.sent = 0

    def write(self, data: bytes) -> "MeteredWriter":
        self.sent += len(data)
        self._w.write(data)
        return self

    async def drain(self) -> None:
        await self._w.drain()

    @property
    def closing(self) -> bool:
        return self._w.closing

    def abort(self) -> None:
        self._w.abort()

    def end(self, data: bytes | None = None) -> None:
        self._w.end(data)
