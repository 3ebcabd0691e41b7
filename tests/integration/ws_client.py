#!/usr/bin/python3
# WebSocket cases against an http listener, with Python's websockets
# (Debian python3-websockets) as the client: ws_client.py PORT CASE.
# Prints one line that test_http.c compares; exits 1 on a surprise.
import asyncio
import base64
import os
import socket
import struct
import sys

import websockets
from websockets.frames import Opcode


def url(port):
    return f"ws://127.0.0.1:{port}/ws"


async def echo(port, msg):
    async with websockets.connect(url(port), max_size=None) as ws:
        await ws.send(msg)
        return await ws.recv()


async def closed_code(ws):
    try:
        await ws.recv()
    except websockets.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None
    return "no close"


async def case(port, name):
    if name == "text":
        return await echo(port, "héllo") == "héllo"
    if name == "binary":
        return await echo(port, b"\x00\x01\xfe\xff") == b"\x00\x01\xfe\xff"
    if name == "fragments":
        return await echo(port, ["frag", "men", "ts"]) == "fragments"
    if name == "big":
        big = os.urandom(1 << 20)
        return await echo(port, big) == big
    if name == "ping":
        async with websockets.connect(url(port)) as ws:
            await asyncio.wait_for(await ws.ping(b"are you there"), 5)
            return True
    if name == "close":
        ws = await websockets.connect(url(port))
        await ws.close(code=4000, reason="bye")
        return ws.close_code
    if name == "too_big":
        async with websockets.connect(url(port), max_size=None) as ws:
            await ws.send(b"x" * ((1 << 20) + 1))
            return await closed_code(ws)
    if name == "not_utf8":
        async with websockets.connect(url(port)) as ws:
            await ws.write_frame(True, Opcode.TEXT, b"ok \xff\xfe")
            return await closed_code(ws)
    if name == "going_away":
        # Says "ready" once served, then waits for the daemon's close.
        async with websockets.connect(url(port)) as ws:
            await ws.send("x")
            await ws.recv()
            print("ready", flush=True)
            return await asyncio.wait_for(closed_code(ws), 20)
    raise SystemExit(f"unknown case {name}")


def unmasked(port):
    # websockets always masks: an unmasked client frame takes a socket.
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    s.sendall(b"\x81\x02hi")
    frame = s.recv(64)
    return struct.unpack("!H", frame[2:4])[0] if frame[:1] == b"\x88" \
        else frame


def main():
    port, name = int(sys.argv[1]), sys.argv[2]
    if name == "unmasked":
        print(name, unmasked(port))
    else:
        print(name, asyncio.run(case(port, name)))


main()
