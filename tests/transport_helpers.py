"""Shared fixtures for the transport tests: a publisher, an initialised appliance, snapshot makers, tampering,
a real HTTP server and a real HTTP proxy on loopback."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import http.server
import os
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nacl.signing
import pytest

from continuity import envelope, keys, snapshot_build, snapshotdb
from continuity.store import Store
from tests.factories import small_practice

PASSPHRASE = "cheval correct agrafe"
USER = "alice"
PRACTICE = "cabinet-lilas"
NOW = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)


def flip_byte(data: bytes, index: int, mask: int = 0x01) -> bytes:
    """The same bytes with one bit flipped at `index` (negative indexes count from the end)."""
    mutable = bytearray(data)
    mutable[index] ^= mask
    return bytes(mutable)


def use_weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test-only cheap argon2id (docs/snapshot-format.md §8); production defaults stay MODERATE."""
    monkeypatch.setenv(keys.WEAK_KDF_ENV, "1")


@dataclass
class Rig:
    """A publisher key, an appliance home that trusts it, and a maker of snapshot files."""

    tmp: Path
    home: Path
    publisher: nacl.signing.SigningKey
    secrets: keys.ApplianceSecrets
    database: Path
    counts: dict[str, int]
    made: list[Path] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return Store(self.home)

    def make(
        self,
        sequence: int,
        *,
        created_at: dt.datetime | None = None,
        expires_in: dt.timedelta | None = None,
        database: Path | None = None,
        signing_key: nacl.signing.SigningKey | None = None,
        recipients: list[nacl.public.PublicKey] | None = None,
        practice_id: str = PRACTICE,
        counts: dict[str, int] | None = None,
        name: str | None = None,
        compression: str = envelope.DEFAULT_COMPRESSION,
        schema_version: int = snapshotdb.SCHEMA_VERSION,
    ) -> Path:
        created = created_at or (NOW - dt.timedelta(hours=1) + dt.timedelta(seconds=sequence))
        if expires_in is None:
            # 48 hours from the later of NOW and the real clock: a file handed to a part that reads
            # the real clock (the inbox watcher, the CLI's pull) must not expire with the calendar.
            expires_at = max(created, dt.datetime.now(dt.UTC)) + dt.timedelta(hours=48)
        else:
            expires_at = created + expires_in
        out = self.tmp / (name or f"snap-{sequence}-{len(self.made)}.snap")
        envelope.seal(
            database or self.database,
            out,
            signing_keys=[signing_key or self.publisher],
            recipients=recipients or [self.secrets.box_key.public_key],
            practice_id=practice_id,
            sequence=sequence,
            created_at=created,
            expires_at=expires_at,
            schema_version=schema_version,
            counts=self.counts if counts is None else counts,
            compression=compression,
        )
        self.made.append(out)
        return out

    def ingest_bytes(self, data: bytes, now: dt.datetime = NOW) -> str:
        import io

        return self.store.ingest(io.BytesIO(data), now=now).outcome

    def ingest(self, path: Path, now: dt.datetime = NOW) -> str:
        with path.open("rb") as handle:
            return self.store.ingest(handle, now=now).outcome

    def current_bytes(self) -> bytes | None:
        path = self.store.current_path()
        return path.read_bytes() if path else None

    def snapshot_state(self) -> tuple[bytes | None, list[str]]:
        """What must not change when a file is rejected: current file bytes and the stored file names."""
        return self.current_bytes(), [p.name for p in self.store.snapshot_files()]


def make_rig(tmp_path: Path) -> Rig:
    home = tmp_path / "home"
    Store(home).create()
    secrets = keys.init_appliance(home, USER, PASSPHRASE)
    pub_dir = tmp_path / "publisher"
    keys.generate_publisher_key(pub_dir)
    keys.trust_publisher(home, pub_dir / "publisher.pub")
    database = tmp_path / "practice.db"
    built = snapshot_build.build_from_records(small_practice(), database, practice_id=PRACTICE)
    return Rig(
        tmp=tmp_path,
        home=home,
        publisher=keys.load_publisher_signing_key(pub_dir),
        secrets=secrets,
        database=database,
        counts=built.counts,
    )


def assert_untouched(rig: Rig, before: tuple[bytes | None, list[str]]) -> None:
    assert rig.snapshot_state() == before
    assert rig.store.staging_files() == []
    assert not [p for p in os.listdir(rig.home / "store") if p.endswith(".tmp")]


# --- a real HTTP server on 127.0.0.1, in a thread ---------------------------------------------------


class SnapshotHandler(http.server.BaseHTTPRequestHandler):
    """Serves `server.files[path]` with ETag and Last-Modified, or runs `server.behaviour[path]`."""

    server: SnapshotServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.server.requests.append((self.path, dict(self.headers)))
        behaviour = self.server.behaviour.get(self.path)
        if behaviour is not None:
            with contextlib.suppress(OSError):
                behaviour(self)
            return
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", "Sat, 28 Nov 2026 05:00:00 GMT")
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(data)


class SnapshotServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SnapshotHandler)
        self.files: dict[str, bytes] = {}
        self.behaviour: dict[str, Callable[[SnapshotHandler], None]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []

    def url(self, path: str) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{path}"


@contextlib.contextmanager
def serving(tls: ssl.SSLContext | None = None) -> Iterator[SnapshotServer]:
    server = SnapshotServer()
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def isolate_network_environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No proxy, netrc or systemd credential from the machine running the tests leaks into them."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name in ("NETRC", "CREDENTIALS_DIRECTORY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))  # ~/.netrc is looked up there


# --- a real HTTP proxy on 127.0.0.1: CONNECT tunnels (https) and absolute-URI requests (http) --------


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    """What a practice's proxy (squid, tinyproxy) does, reduced to the two methods a pull uses."""

    server: LoopbackProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass

    def _authorised(self) -> bool:
        expected = self.server.credentials
        if expected is None:
            return True
        token = "Basic " + base64.b64encode(expected.encode()).decode("ascii")
        if self.headers.get("Proxy-Authorization") == token:
            return True
        self.send_response(407, "Proxy Authentication Required")
        self.send_header("Proxy-Authenticate", 'Basic realm="cabinet"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.close_connection = True
        return False

    def do_CONNECT(self) -> None:  # noqa: N802 - the stdlib's name
        self.server.seen.append(("CONNECT", self.path, dict(self.headers)))
        if not self._authorised():
            return
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            self.send_error(502)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        _relay(self.connection, upstream)
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._forward("GET")

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name (the journal witness posts through the proxy)
        self._forward("POST")

    def _forward(self, method: str) -> None:
        self.server.seen.append((method, self.path, dict(self.headers)))
        if not self._authorised():
            return
        target = urllib.parse.urlsplit(self.path)
        if target.scheme != "http" or not target.hostname:
            self.send_error(400)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = socket.create_connection((target.hostname, target.port or 80), timeout=5)
        skipped = {"proxy-authorization", "proxy-connection", "connection"}
        lines = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items() if k.lower() not in skipped)
        path = urllib.parse.urlunsplit(("", "", target.path or "/", target.query, ""))
        upstream.sendall(f"{method} {path} HTTP/1.1\r\n{lines}Connection: close\r\n\r\n".encode("latin-1") + body)
        _relay(self.connection, upstream)
        self.close_connection = True


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until one side closes."""
    import selectors

    with upstream, selectors.DefaultSelector() as selector:
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        while True:
            for key, _ in selector.select(timeout=10):
                source = key.fileobj
                assert isinstance(source, socket.socket)
                try:
                    data = source.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                key.data.sendall(data)


class LoopbackProxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, credentials: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.credentials = credentials  # "user:password" required in Proxy-Authorization, if set
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    def url(self, userinfo: str = "") -> str:
        host, port = self.server_address[:2]
        return f"http://{userinfo + '@' if userinfo else ''}{host!s}:{port}"


@contextlib.contextmanager
def proxying(credentials: str | None = None) -> Iterator[LoopbackProxy]:
    proxy = LoopbackProxy(credentials)
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(5)
