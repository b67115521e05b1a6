"""A lean HTTP/1.1 load generator for the start rounds: keep-alive connections over asyncio streams.

On these two cores the load generator shares the CPU with what it measures. httpx spends about
2.9 ms of CPU per request here, twice what the raw Temporal client spends per start, and that was
charged to the API's side of the start ratio. This client writes a request and reads a
Content-Length answer, nothing more (no redirects, no chunked bodies, no TLS): the generator's
own CPU per journey is printed beside each round, so what it costs stays visible.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    async def exchange(self, request: bytes) -> tuple[Answer, bool]:
        """The answer, and whether the server keeps the connection open."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, keep = 0, True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                raise RuntimeError(f"a {value.strip()} answer: only Content-Length is read here")
            elif name == "connection" and value.strip().lower() == "close":
                keep = False
        return Answer(status, await self.reader.readexactly(length)), keep

    def close(self) -> None:
        self.writer.close()


IDLE_LIMIT_S = 2.0
"""A connection idle longer is not reused: uvicorn closes idle ones after 5 s, and a request
written to a connection the server is closing would be lost."""


class LeanClient:
    """At most `connections` keep-alive connections to one server, reused across requests."""

    def __init__(self, base_url: str, connections: int) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"an http://host:port address is needed, not {base_url!r}")
        self._host, self._port = parts.hostname, parts.port
        self._authority = f"{self._host}:{self._port}".encode()
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(connections)

    async def post_json(self, path: str, body: Any, headers: dict[str, str]) -> Answer:
        payload = json.dumps(body, separators=(",", ":")).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        request = (
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + self._authority + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode()
            + b"\r\n"
            + extra
            + b"\r\n"
            + payload
        )
        async with self._slots:
            connection = await self._connection()
            try:
                answer, keep = await connection.exchange(request)
            except BaseException:
                connection.close()
                raise
            if keep:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()
            return answer

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.reader.at_eof() and (
                time.monotonic() - connection.idle_since < IDLE_LIMIT_S
            ):
                return connection
            connection.close()
        reader, writer = await asyncio.open_connection(self._host, self._port)
        return _Connection(reader, writer)

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()
