"""Fetch a snapshot file from an http(s) URL or a path, with caps, timeouts, retries and conditional requests.

The fetched bytes are streamed straight into `Store.ingest` (verify while receiving, no secret). Every
attempt, accepted, unchanged or rejected, is recorded in the state file and in the journal.
"""

from __future__ import annotations

import base64
import datetime as dt
import errno
import http.client
import logging
import os
import socket
import ssl
import stat
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from continuity import envelope
from continuity.errors import ContinuityError, SnapshotRejected, StoreError, TooLarge, TransportError
from continuity.store import Store, utcnow

log = logging.getLogger(__name__)

USER_AGENT = "continuity-appliance/1"
MAX_REDIRECTS = 3
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class PullOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # longest silence between two received packets
    deadline: float = 600.0  # whole transfer, against a server that drips one byte at a time
    retries: int = 3  # extra attempts after the first, for network errors and 5xx only
    backoff: float = 2.0  # seconds before the first retry, doubled each time
    ca_file: Path | None = None  # pin the server's CA instead of the system trust store
    max_file_size: int | None = None  # default: the store's configured cap


@dataclass(frozen=True)
class PullResult:
    outcome: str  # "accepted" | "unchanged"
    source: str
    header: envelope.Header | None
    attempts: int


def display_source(source: str) -> str:
    """The source without credentials or query string: what goes in the state, logs and journal."""
    parsed = urllib.parse.urlsplit(source)
    if parsed.scheme in ("http", "https"):
        host = parsed.hostname or ""
        if parsed.port:
            host = f"{host}:{parsed.port}"
        return urllib.parse.urlunsplit((parsed.scheme, host, parsed.path, "", ""))
    return str(Path(source).expanduser().absolute())


class _Body:
    """A response body with a byte cap and an overall deadline; errors become TransportError/TooLarge."""

    def __init__(self, response: http.client.HTTPResponse, sock: socket.socket | None, deadline: float, cap: int):
        self._response = response
        self._sock = sock
        self._deadline = deadline
        self._cap = cap
        self.received = 0

    def read(self, size: int = -1, /) -> bytes:
        remaining_time = self._deadline - time.monotonic()
        if remaining_time <= 0:
            raise TransportError("transfer deadline exceeded (server too slow)")
        if self._sock is not None:
            current = self._sock.gettimeout()
            if current is None or current > remaining_time:
                self._sock.settimeout(remaining_time)
        try:
            # read1: one network read at a time, so the deadline is checked between packets.
            data = self._response.read1(size if size > 0 else envelope.IO_BLOCK)
        except TimeoutError as error:
            if time.monotonic() >= self._deadline - 0.05:
                raise TransportError(f"transfer deadline exceeded after {self.received} bytes") from error
            raise TransportError(f"read timed out after {self.received} bytes") from error
        except (OSError, http.client.HTTPException) as error:
            raise TransportError(f"connection failed after {self.received} bytes: {error!r}") from error
        if not data and self._response.length:
            raise TransportError(f"connection closed {self._response.length} bytes before Content-Length")
        self.received += len(data)
        if self.received > self._cap:
            raise TooLarge(f"server sent more than the {self._cap}-byte cap")
        return data


class _FileBody:
    def __init__(self, handle: Any, cap: int) -> None:
        self._handle = handle
        self._cap = cap
        self.received = 0

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self._handle.read(size if size > 0 else envelope.IO_BLOCK)
        except OSError as error:
            raise TransportError(f"cannot read the file: {error.strerror}") from error
        self.received += len(data)
        if self.received > self._cap:
            raise TooLarge(f"file grew beyond the {self._cap}-byte cap while being read")
        return data


def open_regular_file(path: Path, cap: int, *, follow_symlinks: bool = True) -> Any:
    """Open a regular file for reading, refusing other kinds and files over the cap before reading."""
    flags = os.O_RDONLY | (0 if follow_symlinks else os.O_NOFOLLOW) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if not follow_symlinks and error.errno == errno.ELOOP:
            raise TransportError(f"{path}: is a symbolic link, refused") from error
        raise TransportError(f"{path}: cannot open ({error.strerror})") from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TransportError(f"{path}: not a regular file, refused")
        if info.st_size > cap:
            raise TooLarge(f"{path}: {info.st_size} bytes exceeds the {cap}-byte cap")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class Puller:
    """Pull into one store. `sleep` and `now` are injectable so tests need not wait."""

    def __init__(
        self,
        store: Store,
        options: PullOptions | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.options = options or PullOptions()
        self.sleep = sleep

    @property
    def cap(self) -> int:
        return self.options.max_file_size or self.store.config.max_file_size

    def pull(
        self,
        source: str,
        *,
        now: dt.datetime | None = None,
        follow_symlinks: bool = True,
        label: str | None = None,
    ) -> PullResult:
        """Fetch, verify, store and record. Raises a SnapshotRejected subclass when nothing was accepted."""
        self.store.require_initialized()
        label = label or display_source(source)
        attempts = 0
        try:
            if urllib.parse.urlsplit(source).scheme in ("http", "https"):
                outcome, header, validators, attempts = self._pull_http(source, now)
            else:
                attempts = 1
                outcome, header = self._pull_path(Path(source).expanduser(), now, follow_symlinks)
                validators = None
        except SnapshotRejected as error:
            self.store.record_attempt(source=label, outcome="rejected", reason=error.reason, detail=str(error), now=now)
            journal_pull(self.store, "pull_rejected", label, None, error.reason)
            log.error("pull from %s rejected (%s): %s", label, error.reason, error)
            raise
        except StoreError as error:
            # The file may be fine but this appliance cannot store it (disk full, permissions): say so too.
            try:
                self.store.record_attempt(source=label, outcome="error", reason="store", detail=str(error), now=now)
            except ContinuityError as record_error:
                log.error("could not record the failed pull: %s", record_error)
            raise
        self.store.record_attempt(
            source=label,
            outcome=outcome,
            sequence=header.sequence if header else None,
            now=now,
            conditional=validators,
        )
        if outcome == "accepted":
            assert header is not None
            journal_pull(self.store, "pull_accepted", label, header.sequence, None)
        log.info("pull from %s: %s", label, outcome)
        return PullResult(outcome, label, header, attempts)

    # -- local files

    def _pull_path(self, path: Path, now: dt.datetime | None, follow_symlinks: bool) -> tuple[str, envelope.Header]:
        with open_regular_file(path, self.cap, follow_symlinks=follow_symlinks) as handle:
            result = self.store.ingest(_FileBody(handle, self.cap), now=now)
        return result.outcome, result.header

    # -- http(s)

    def _pull_http(
        self, url: str, now: dt.datetime | None
    ) -> tuple[str, envelope.Header | None, dict[str, str] | None, int]:
        delay = self.options.backoff
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome, header, validators = self._http_once(url, now)
                return outcome, header, validators, attempt
            except _Retryable as error:
                if attempt > self.options.retries:
                    raise TransportError(f"{error} (after {attempt} attempts)") from error
                log.warning("pull attempt %d failed (%s): retrying in %.1f s", attempt, error, delay)
                self.sleep(delay)
                delay *= 2

    def _connect(self, parsed: urllib.parse.SplitResult) -> http.client.HTTPConnection:
        host = parsed.hostname
        if not host:
            raise TransportError(f"no host in URL {display_source(parsed.geturl())}")
        if parsed.scheme == "https":
            context = ssl.create_default_context(cafile=str(self.options.ca_file) if self.options.ca_file else None)
            # create_default_context already requires a valid chain and hostname; say it where it matters.
            context.check_hostname = True
            context.verify_mode = ssl.CERT_REQUIRED
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, parsed.port, timeout=self.options.connect_timeout, context=context
            )
        else:
            connection = http.client.HTTPConnection(host, parsed.port, timeout=self.options.connect_timeout)
        try:
            connection.connect()
        except ssl.SSLError as error:
            connection.close()
            raise TransportError(f"TLS verification failed for {host}: {error.reason or error}") from error
        except OSError as error:
            connection.close()
            raise _Retryable(f"cannot connect to {host}: {error.strerror or error!r}") from error
        if connection.sock is not None:
            connection.sock.settimeout(self.options.read_timeout)
        return connection

    def _http_once(self, url: str, now: dt.datetime | None) -> tuple[str, envelope.Header | None, dict[str, str]]:
        label = display_source(url)
        known = self.store.conditional(label)
        deadline = time.monotonic() + self.options.deadline
        for _ in range(MAX_REDIRECTS + 1):
            parsed = urllib.parse.urlsplit(url)
            connection = self._connect(parsed)
            try:
                headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
                if "etag" in known:
                    headers["If-None-Match"] = known["etag"]
                if "last_modified" in known:
                    headers["If-Modified-Since"] = known["last_modified"]
                if parsed.username:
                    token = f"{urllib.parse.unquote(parsed.username)}:{urllib.parse.unquote(parsed.password or '')}"
                    headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode("ascii")
                path = urllib.parse.urlunsplit(("", "", parsed.path or "/", parsed.query, ""))
                try:
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                except TimeoutError as error:
                    raise _Retryable("server did not answer in time") from error
                except (OSError, http.client.HTTPException) as error:
                    raise _Retryable(f"request failed: {error!r}") from error
                status = response.status
                if status in (301, 302, 303, 307, 308):
                    location = response.getheader("Location")
                    if not location:
                        raise TransportError(f"redirect {status} without Location")
                    target = urllib.parse.urljoin(url, location)
                    if parsed.scheme == "https" and not target.startswith("https://"):
                        raise TransportError("refusing a redirect from https to plain http")
                    url = target
                    continue
                if status == 304:
                    return "unchanged", None, known
                if status in RETRYABLE_STATUS:
                    raise _Retryable(f"server answered {status} {response.reason}")
                if status != 200:
                    raise TransportError(f"server answered {status} {response.reason}")
                length = response.getheader("Content-Length")
                if length is not None and length.strip().isdigit() and int(length) > self.cap:
                    raise TooLarge(f"server announces {int(length)} bytes, over the {self.cap}-byte cap")
                body = _Body(response, connection.sock, deadline, self.cap)
                try:
                    result = self.store.ingest(body, now=now)
                except TransportError as error:  # the connection broke mid-body: worth another try
                    raise _Retryable(str(error)) from error
                validators = {}
                if etag := response.getheader("ETag"):
                    validators["etag"] = etag[:200]
                if modified := response.getheader("Last-Modified"):
                    validators["last_modified"] = modified[:100]
                return result.outcome, result.header, validators
            finally:
                connection.close()
        raise TransportError(f"more than {MAX_REDIRECTS} redirects")


class _Retryable(Exception):
    """A failure worth another attempt (network, timeout, 5xx). Becomes TransportError when retries run out."""


def pull(
    store: Store, source: str, options: PullOptions | None = None, *, now: dt.datetime | None = None
) -> PullResult:
    return Puller(store, options).pull(source, now=now)


def journal_pull(store: Store, action: str, source: str, sequence: int | None, reason: str | None) -> None:
    """The single journal call site of the transport: no patient data, only what happened to which file."""
    from continuity.journal import SYSTEM_USER, Journal

    details: dict[str, Any] = {"source": source}
    if reason:
        details["reason"] = reason
    try:
        Journal(store.home).append(user=SYSTEM_USER, action=action, snapshot_seq=sequence, details=details)
    except ContinuityError as error:
        # The pull itself is done and recorded in the state; a journal that cannot be written (full disk,
        # JournalError) is reported but must not turn an accepted snapshot into a failed pull.
        log.error("could not journal %s: %s", action, error)


__all__ = ["PullOptions", "PullResult", "Puller", "pull", "display_source", "open_regular_file", "utcnow"]
