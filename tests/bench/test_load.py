"""The load generator: its open-loop schedule, its closed-loop brake, its HTTP client."""

import asyncio
import json
from collections.abc import Callable

import pytest

from ordersaga.bench.data import BENCH_PRODUCTS, BENCH_USERS
from ordersaga.bench.http import HttpPool, ResponseError, parse_head, post_request, take_response
from ordersaga.bench.load import LoadGenerator, LoadSpec, due_at, due_count
from tests.bench.fake_server import fake_server


def test_the_open_loop_schedule_is_fixed_by_the_rate_alone() -> None:
    assert due_count(10, -0.1) == 0
    assert due_count(10, 0.0) == 1  # the first request goes at once
    assert due_count(10, 0.0999) == 1
    assert due_count(10, 0.1) == 2
    assert due_count(10, 1.0) == 11
    assert [due_at(4, i) for i in range(4)] == [0.0, 0.25, 0.5, 0.75]


def test_a_response_head_gives_status_length_and_keep_alive() -> None:
    head = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nContent-Length: 17"
    assert parse_head(head) == (201, 17, True)
    assert parse_head(b"HTTP/1.1 422 X\r\nconnection: close\r\ncontent-length: 3") == (
        422,
        3,
        False,
    )
    assert parse_head(b"HTTP/1.1 204 No Content") == (204, 0, True)
    with pytest.raises(ResponseError):
        parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked")
    with pytest.raises(ResponseError):
        parse_head(b"SSH-2.0-OpenSSH")


def test_responses_are_taken_whole_and_one_at_a_time() -> None:
    one = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"
    buffer = bytearray(one[:-1])
    assert take_response(buffer) is None  # the body is not all there yet
    buffer += one[-1:] + one
    assert take_response(buffer) == (201, True)
    assert bytes(buffer) == one
    assert take_response(buffer) == (201, True)
    assert buffer == b""


def test_the_request_is_a_json_post_with_its_length() -> None:
    request = post_request("127.0.0.1", 8091, "/api/v1/orders", b'{"a":1}')
    head, body = request.split(b"\r\n\r\n")
    assert head.startswith(b"POST /api/v1/orders HTTP/1.1\r\n")
    assert b"Content-Length: 7" in head and body == b'{"a":1}'


async def test_a_pool_keeps_its_connections_alive() -> None:
    async with fake_server() as server:
        pool = HttpPool("127.0.0.1", server.port, max_connections=4)
        request = post_request("127.0.0.1", server.port, "/x", b"{}")
        statuses = [await pool.send(request) for _ in range(10)]
        pool.close()
    assert statuses == [201] * 10
    assert server.connections == pool.opened == 1


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``condition`` holds; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_the_open_loop_sends_on_schedule_however_slow_the_answers() -> None:
    async with fake_server(delay=1.0) as server:
        generator = LoadGenerator(f"http://127.0.0.1:{server.port}", LoadSpec(rate=40))
        stop = asyncio.Event()
        running = asyncio.create_task(generator.run(stop))
        # a dozen requests out before the first answer could come: none waited for one
        await eventually(lambda: len(server.arrivals) >= 12)
        stop.set()
        await running
    assert generator.stats.accepted == generator.stats.sent == len(server.arrivals) >= 12
    dues = sorted(due for due, _ in generator.stats.answered)
    # each due on the schedule, 1/40 s apart, however late the machine sent it
    assert [round(d - dues[0], 6) for d in dues] == [round(i / 40, 6) for i in range(len(dues))]
    assert all(waited >= 1.0 for _, waited in generator.stats.answered)
    order = json.loads(server.bodies[0])
    assert order["userID"] in BENCH_USERS and order["productID"] in BENCH_PRODUCTS
    assert order["quantity"] == 1


async def test_the_closed_loop_waits_while_too_many_sagas_are_unfinished() -> None:
    async with fake_server() as server:
        spec = LoadSpec(rate=None, concurrency=3, max_in_flight=5)
        generator = LoadGenerator(f"http://127.0.0.1:{server.port}", spec)
        stop = asyncio.Event()
        running = asyncio.create_task(generator.run(stop))
        await eventually(lambda: generator.stats.accepted >= 5)
        await asyncio.sleep(0.3)  # time to overrun, were the brake not there
        held_at = generator.stats.sent
        generator.note_finished(5)  # five sagas ended: room for five more
        await eventually(lambda: generator.stats.accepted >= 10)
        await asyncio.sleep(0.3)
        after_room = generator.stats.sent
        stop.set()
        await asyncio.wait_for(running, 5)
    # a worker checks before its request is answered, so up to concurrency - 1 over
    assert 5 <= held_at <= 5 + 2
    assert 10 <= after_room <= 10 + 2
