"""The bench's keep-alive HTTP client (bench/http.py) against a real socket server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bench.http import LeanClient


class Server:
    """Answers each POST with its JSON body echoed. After `close_after` answers it closes the
    connection: saying so in the answer (`announce`), or silently later, as a server does with
    an idle connection."""

    def __init__(self, close_after: int = 0, announce: bool = True) -> None:
        self.connections = 0
        self.close_after = close_after
        self.announce = announce

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            body = json.loads(await reader.readexactly(length))
            answer = json.dumps({"echo": body}).encode()
            answered += 1
            closing = self.close_after and answered >= self.close_after
            writer.write(
                b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(answer)}\r\n".encode()
                + (b"Connection: close\r\n" if closing and self.announce else b"")
                + b"\r\n"
                + answer
            )
            await writer.drain()
            if closing:
                break
        writer.close()


@asynccontextmanager
async def client_of(server: Server, connections: int) -> AsyncIterator[LeanClient]:
    """`server` listening on a free loopback port, and a client of it; both closed afterwards."""
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    client = LeanClient(f"http://127.0.0.1:{port}", connections)
    try:
        yield client
    finally:
        await client.aclose()
        listening.close()


async def test_posts_json_and_reuses_one_connection_for_sequential_requests() -> None:
    server = Server()
    async with client_of(server, connections=4) as client:
        answers = [await client.post_json("/v1/x", {"n": n}, {"X-Key": "k"}) for n in range(5)]
    assert [a.status for a in answers] == [201] * 5
    assert [json.loads(a.body)["echo"]["n"] for a in answers] == list(range(5))
    assert server.connections == 1


async def test_a_connection_the_server_closed_is_not_used_again() -> None:
    server = Server(close_after=1)
    async with client_of(server, connections=2) as client:
        answers = [await client.post_json("/v1/x", {"n": n}, {}) for n in range(3)]
    assert [a.status for a in answers] == [201] * 3
    assert server.connections == 3


async def test_a_connection_the_server_dropped_while_idle_is_not_used_again() -> None:
    server = Server(close_after=1, announce=False)
    async with client_of(server, connections=2) as client:
        answers = []
        for n in range(3):
            answers.append(await client.post_json("/v1/x", {"n": n}, {}))
            await asyncio.sleep(0.1)  # the server closes the idle connection meanwhile
    assert [a.status for a in answers] == [201] * 3
    assert server.connections == 3


async def test_concurrent_requests_open_at_most_the_allowed_connections() -> None:
    server = Server()
    async with client_of(server, connections=3) as client:
        posts = (client.post_json("/v1/x", {"n": n}, {}) for n in range(12))
        answers = await asyncio.gather(*posts)
    assert sorted(json.loads(a.body)["echo"]["n"] for a in answers) == list(range(12))
    assert server.connections <= 3
