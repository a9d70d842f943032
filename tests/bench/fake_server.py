"""A tiny HTTP/1.1 server for the load generator's tests: answers every request 201,
after a delay or once released, and notes when each request arrived."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

ANSWER = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class FakeServer:
    def __init__(self, delay: float, held: bool) -> None:
        self.delay = delay
        self._released = asyncio.Event()
        if not held:
            self._released.set()
        self.arrivals: list[float] = []
        self.bodies: list[bytes] = []
        self.connections = 0
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.arrivals.append(time.monotonic())
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.bodies.append(await reader.readexactly(length))
                await asyncio.sleep(self.delay)
                await self._released.wait()
                writer.write(ANSWER)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def release(self) -> None:
        """Answer every request held so far, and the later ones at once."""
        self._released.set()


@asynccontextmanager
async def fake_server(delay: float = 0.0, held: bool = False) -> AsyncIterator[FakeServer]:
    """The server; with ``held``, it answers nothing until :meth:`FakeServer.release`."""
    fake = FakeServer(delay, held)
    server = await asyncio.start_server(fake._serve, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.close()
