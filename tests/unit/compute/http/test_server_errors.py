"""devenv's HTTP/1.1 server answers 500 when a handler fails, whether it raises at once or
in its coroutine, and keeps serving."""

from __future__ import annotations

import asyncio

from devenv.compute.http.server import Request, Response, serve


def test_a_failing_coroutine_handler_gets_a_500_and_the_server_goes_on():
    async def handler(request: Request):
        if request.path == "/boom":
            raise RuntimeError("handler bug")
        return Response(200, b"ok")

    async def scenario() -> list[bytes]:
        server = await serve(handler, "127.0.0.1", max_body=1024)
        port = server.sockets[0].getsockname()[1]
        try:
            answers = []
            for path in ("/boom", "/fine"):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                answers.append(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5))
                writer.close()
            return answers
        finally:
            server.close()

    boom, fine = asyncio.run(scenario())
    assert boom.startswith(b"HTTP/1.1 500") and b"Connection: close" in boom
    assert fine.startswith(b"HTTP/1.1 200")


def test_a_body_over_max_body_gets_the_servers_too_large_answer_and_the_handler_never_runs():
    seen = []

    def too_large(headers, size):
        return Response(413, f"{headers['x-kind']} {size}".encode(), [("x-amzn-ErrorType", "TooBig")])

    async def scenario() -> bytes:
        server = await serve(lambda request: seen.append(request) or Response(200), "127.0.0.1",
                             max_body=10, too_large=too_large)
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Kind: big\r\nContent-Length: 11\r\n\r\n"
                         + b"y" * 11)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            body = await asyncio.wait_for(reader.readexactly(6), 5)
            writer.close()
            return head + body
        finally:
            server.close()

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 413") and b"x-amzn-ErrorType: TooBig" in answer
    assert answer.endswith(b"big 11") and seen == []
