"""Small real proxies for tests: an HTTP proxy (CONNECT, or plain requests forwarded), the same
over TLS (scheme ``https``, with a certificate from ``ssl``) and a SOCKS5 proxy, each with an
optional user name and password, counting the tunnels they opened."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl as ssl_
import struct
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Proxy:
    """A running proxy on 127.0.0.1; ``tunnels`` lists the ``host:port`` of each tunnel."""

    scheme: str
    user: str | None = None
    password: str | None = None
    tunnels: list[str] = field(default_factory=list)
    refused: int = 0
    server: asyncio.Server | None = None
    ssl: ssl_.SSLContext | None = None  # the server side of an https:// proxy

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"{self.scheme}://{auth}127.0.0.1:{self.port}"

    async def __aenter__(self) -> Proxy:
        handler = self._socks5 if self.scheme == "socks5" else self._http
        tls = self.ssl if self.scheme == "https" else None
        self.server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request, *lines = head.split("\r\n")
        method, target, _ = request.split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        expected = None
        if self.user:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            expected = f"Basic {token}"
        if headers.get("proxy-authorization") != expected:
            self.refused += 1
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            await self._tunnel(reader, writer, host, int(port), b"HTTP/1.1 200 OK\r\n\r\n")
            return
        # A plain-http target: the request names it in full; pass it (and the rest) on as is.
        url = urlsplit(target)
        await self._tunnel(
            reader, writer, url.hostname or "", url.port or 80, b"", forward=head.encode("latin-1")
        )

    async def _socks5(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        wanted = 2 if self.user else 0
        if wanted not in methods:
            writer.write(b"\x05\xff")
            writer.close()
            self.refused += 1
            return
        writer.write(bytes([5, wanted]))
        if self.user:
            _, size = await reader.readexactly(2)
            user = (await reader.readexactly(size)).decode()
            (size,) = await reader.readexactly(1)
            password = (await reader.readexactly(size)).decode()
            ok = user == self.user and password == self.password
            writer.write(b"\x01\x00" if ok else b"\x01\x01")
            if not ok:
                self.refused += 1
                writer.close()
                return
        _, _, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = ".".join(str(b) for b in await reader.readexactly(4))
        else:
            (size,) = await reader.readexactly(1)
            host = (await reader.readexactly(size)).decode()
        (port,) = struct.unpack(">H", await reader.readexactly(2))
        reply = b"\x05\x00\x00\x01" + bytes(4) + b"\x00\x00"
        await self._tunnel(reader, writer, host, port, reply)

    async def _tunnel(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        port: int,
        established: bytes,
        forward: bytes = b"",
    ) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        self.tunnels.append(f"{host}:{port}")
        writer.write(established)
        await writer.drain()
        upstream_writer.write(forward)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
