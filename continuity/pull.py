"""Fetch a snapshot file from an http(s) URL or a path, with caps, a deadline, retries and conditional requests.

The fetched bytes are streamed straight into `Store.ingest` (verify while receiving, no secret). Every
attempt, accepted, unchanged, quarantined or rejected, is recorded in the state file and in the journal.

HTTP goes through the standard library's http.client, extended here with what an appliance on a
practice or hospital network needs (docs/operations.md, "The nightly pull"):

- one deadline for the whole pull (every attempt, the waits between them, TLS, proxy, headers, chunk
  framing, body): a watchdog shuts the socket down when it passes, whatever the server is dripping;
- the standard proxy variables (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY; https through CONNECT);
- credentials from the URL or from a netrc file, sent only to the host they belong to.

urllib3 was considered (issue #12): it reads neither the proxy variables nor netrc, and its `total`
timeout bounds the connect and each read, not a server that sends one byte per second, so it would
have replaced none of this code. `HttpClient` is public so that the witness request (issue #13) can
reach the same server the same way.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import http.client
import logging
import netrc
import os
import socket
import ssl
import stat
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from continuity import envelope
from continuity.errors import ContinuityError, SnapshotRejected, StoreError, TooLarge, TransportError
from continuity.safe_text import printable
from continuity.store import IngestResult, Store, utcnow

log = logging.getLogger(__name__)

USER_AGENT = "continuity-appliance/1"
MAX_REDIRECTS = 3
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
MAX_REASON = 100  # an HTTP reason phrase can be 64 KB long; what we show and record is not
NETRC_CREDENTIAL = "netrc"  # systemd: LoadCredential=netrc:/etc/continuity/netrc


@dataclass(frozen=True)
class PullOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # longest silence between two received packets
    # The whole pull, retries and waits included. Below the 15 min TimeoutStartSec of the systemd unit,
    # so that the pull ends by itself, recorded, instead of being killed.
    deadline: float = 600.0
    retries: int = 3  # extra attempts after the first, for network errors and 5xx only
    backoff: float = 2.0  # seconds before the first retry, doubled each time
    ca_file: Path | None = None  # pin the server's CA instead of the system trust store
    max_file_size: int | None = None  # default: the store's configured cap
    netrc_file: Path | None = None  # default: $NETRC, $CREDENTIALS_DIRECTORY/netrc, ~/.netrc


@dataclass(frozen=True)
class PullResult:
    outcome: str  # "accepted" | "unchanged" | "quarantined"
    source: str
    header: envelope.Header | None
    attempts: int
    detail: str | None = None  # quarantined: why


def display_source(source: str) -> str:
    """The source without credentials or query string: what goes in the state, logs and journal."""
    parsed = urllib.parse.urlsplit(source)
    if parsed.scheme in ("http", "https"):
        host = parsed.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        with contextlib.suppress(ValueError):  # an out-of-range port is shown without it
            if parsed.port:
                host = f"{host}:{parsed.port}"
        return printable(urllib.parse.urlunsplit((parsed.scheme, host, parsed.path, "", "")), 200)
    return printable(str(Path(source).expanduser().absolute()), 200)


# --- the deadline -----------------------------------------------------------------------------------


class Deadline:
    """A point in time (monotonic clock) that the whole pull must not pass."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.remaining() <= 0


class _Watchdog:
    """Shuts a connection down at the deadline, whatever it is blocked on.

    Socket timeouts bound each silence, not a server that answers one byte per second: a status line,
    a header, a proxy's CONNECT answer or a chunk-size line dripped that way never times out. At the
    deadline the socket is shut down through a duplicate of its descriptor, so the reader blocked in
    another thread wakes up with end of file, and the (possibly TLS) socket object is not touched here.
    """

    RECHECK = 0.05  # still connecting: look again shortly (the connect timeout is bounded anyway)

    def __init__(self, connection: http.client.HTTPConnection, deadline: Deadline) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self._armed = True
        self.fired = False
        self._timer: threading.Timer | None = None
        self._schedule(max(0.0, deadline.remaining()))

    def _schedule(self, delay: float) -> None:
        timer = threading.Timer(delay, self._fire)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _fire(self) -> None:
        with self._lock:
            if not self._armed:
                return
            self.fired = True
            sock = self._connection.sock
            fd = -1
            if sock is not None:
                with contextlib.suppress(OSError):
                    fd = sock.fileno()
            if fd < 0:
                self._schedule(self.RECHECK)
                return
            try:
                duplicate = socket.socket(fileno=os.dup(fd))
            except OSError:
                return
            with contextlib.suppress(OSError):
                duplicate.shutdown(socket.SHUT_RDWR)
            duplicate.close()

    def disarm(self) -> None:
        with self._lock:
            self._armed = False
            if self._timer is not None:
                self._timer.cancel()


# --- proxies and credentials ----------------------------------------------------------------------


def proxy_for(url: urllib.parse.SplitResult) -> urllib.parse.SplitResult | None:
    """The proxy to use for `url` from the standard variables, or None (no proxy, or NO_PROXY matches)."""
    proxies = urllib.request.getproxies_environment()
    setting = proxies.get(url.scheme) or proxies.get("all")
    if not setting:
        return None
    host = url.hostname or ""
    with contextlib.suppress(ValueError):
        if url.port:
            host = f"{host}:{url.port}"
    # proxy_bypass_environment: NO_PROXY matching as curl and requests do it (missing from typeshed).
    if urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
        return None
    if "://" not in setting:
        setting = "http://" + setting
    proxy = urllib.parse.urlsplit(setting)
    shown = display_source(setting)
    if proxy.scheme != "http":
        raise TransportError(
            f"proxy {shown}: only http:// proxies are supported (https goes through them with CONNECT)"
        )
    try:
        proxy.port  # noqa: B018 - validates the port
    except ValueError as error:
        raise TransportError(f"proxy {shown}: invalid port") from error
    if not proxy.hostname:
        raise TransportError(f"proxy setting {shown!r} has no host")
    return proxy


def netrc_path(options: PullOptions) -> Path | None:
    """Where credentials are looked up: --netrc, $NETRC, the systemd credential, then ~/.netrc."""
    if options.netrc_file is not None:
        return options.netrc_file
    if os.environ.get("NETRC"):
        return Path(os.environ["NETRC"])
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / NETRC_CREDENTIAL).is_file():
        return Path(credentials) / NETRC_CREDENTIAL
    try:
        return Path.home() / ".netrc"
    except RuntimeError:  # no home directory known for this user
        return None


def netrc_credentials(host: str, options: PullOptions) -> tuple[str, str] | None:
    """Login and password of the netrc entry naming exactly `host` (never the `default` entry)."""
    path = netrc_path(options)
    if path is None:
        return None
    if not path.is_file():
        if options.netrc_file is not None:
            raise TransportError(f"{path}: netrc file not found")
        return None
    try:
        entries = netrc.netrc(str(path))
    except netrc.NetrcParseError as error:
        # The parser's message can quote a token, which may be a password: only the line is said.
        raise TransportError(f"{path}: not a valid netrc file (line {error.lineno})") from error
    except OSError as error:
        raise TransportError(f"{path}: cannot read ({error.strerror})") from error
    entry = entries.hosts.get(host.lower()) or entries.hosts.get(host)
    if entry is None:
        return None
    login, _account, password = entry
    return login or "", password or ""


def _basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode("ascii")


# --- one HTTP exchange ----------------------------------------------------------------------------


class Retryable(Exception):
    """A failure worth another attempt (network, timeout, 5xx). Becomes TransportError when retries run out."""


@dataclass
class Exchange:
    """An open request: its response, and the watchdog that will cut it at the deadline."""

    connection: http.client.HTTPConnection
    response: http.client.HTTPResponse
    watchdog: _Watchdog
    deadline: Deadline
    read_timeout: float

    @property
    def reason(self) -> str:
        return printable(self.response.reason, MAX_REASON)


class HttpClient:
    """HTTP(S) requests under the appliance's transport rules.

    TLS is always verified (system CAs, or only `ca_file`); proxies come from the environment;
    credentials from the URL or netrc go to their own host only; connect and read timeouts apply to
    each step and the deadline to everything. Errors are TransportError (final) or Retryable.
    """

    def __init__(self, options: PullOptions, deadline: Deadline) -> None:
        self.options = options
        self.deadline = deadline

    @contextlib.contextmanager
    def request(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, body: bytes | None = None
    ) -> Iterator[Exchange]:
        parsed = _checked_url(url)
        proxy = proxy_for(parsed)
        connection = self._connection(parsed, proxy)
        watchdog = _Watchdog(connection, self.deadline)
        try:
            self._connect(connection, parsed, proxy, watchdog)
            sent = {"User-Agent": USER_AGENT, **(headers or {})}
            credentials = self._credentials(parsed)
            if credentials is not None:
                sent["Authorization"] = _basic(*credentials)
            if proxy is not None and parsed.scheme == "http":
                target = urllib.parse.urlunsplit((parsed.scheme, _netloc(parsed), parsed.path or "/", parsed.query, ""))
                if proxy.username:
                    sent["Proxy-Authorization"] = _proxy_authorization(proxy)
            else:
                target = urllib.parse.urlunsplit(("", "", parsed.path or "/", parsed.query, ""))
            try:
                connection.request(method, target, body=body, headers=sent)
                response = connection.getresponse()
            except TimeoutError as error:
                raise Retryable("server did not answer in time") from error
            except (OSError, http.client.HTTPException, ValueError) as error:
                if watchdog.fired:
                    raise Retryable("deadline reached while waiting for the answer") from error
                raise Retryable(f"request failed: {printable(repr(error), 200)}") from error
            yield Exchange(connection, response, watchdog, self.deadline, self.options.read_timeout)
        finally:
            watchdog.disarm()
            connection.close()

    def _connection(
        self, parsed: urllib.parse.SplitResult, proxy: urllib.parse.SplitResult | None
    ) -> http.client.HTTPConnection:
        host = parsed.hostname or ""
        timeout = max(0.001, min(self.options.connect_timeout, self.deadline.remaining()))
        peer_host, peer_port = (proxy.hostname or "", proxy.port) if proxy is not None else (host, parsed.port)
        if parsed.scheme == "https":
            ca_file = str(self.options.ca_file) if self.options.ca_file else None
            context = ssl.create_default_context(cafile=ca_file)
            # create_default_context already requires a valid chain and hostname; say it where it matters.
            context.check_hostname = True
            context.verify_mode = ssl.CERT_REQUIRED
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                peer_host, peer_port, timeout=timeout, context=context
            )
            if proxy is not None:
                # The tunnel: TLS (and its hostname check) runs end to end with the server, inside CONNECT.
                tunnel_headers = {"Proxy-Authorization": _proxy_authorization(proxy)} if proxy.username else None
                connection.set_tunnel(host, parsed.port or 443, headers=tunnel_headers)
        else:
            connection = http.client.HTTPConnection(peer_host, peer_port, timeout=timeout)
        return connection

    def _connect(
        self,
        connection: http.client.HTTPConnection,
        parsed: urllib.parse.SplitResult,
        proxy: urllib.parse.SplitResult | None,
        watchdog: _Watchdog,
    ) -> None:
        host = parsed.hostname
        through = f" through the proxy {proxy.hostname}:{proxy.port or 80}" if proxy is not None else ""
        try:
            connection.connect()
        except ssl.SSLError as error:
            if watchdog.fired:
                raise Retryable("deadline reached during the TLS handshake") from error
            reason = printable(error.reason or error, 200)
            raise TransportError(f"TLS verification failed for {host}: {reason}") from error
        except OSError as error:
            message = printable(str(error), 200)
            if watchdog.fired:
                raise Retryable(f"deadline reached while connecting to {host}{through}") from error
            if message.startswith("Tunnel connection failed: 407"):
                raise TransportError(f"the proxy {proxy.hostname if proxy else ''} refused: {message}") from error
            if message.startswith("Tunnel connection failed"):
                raise Retryable(f"the proxy could not reach {host}: {message}") from error
            why = printable(error.strerror or message, 200)
            raise Retryable(f"cannot connect to {host}{through}: {why}") from error
        except http.client.HTTPException as error:  # a proxy answering nonsense to CONNECT
            if watchdog.fired:
                raise Retryable(f"deadline reached while connecting to {host}{through}") from error
            raise Retryable(f"proxy answer unreadable{through}: {printable(repr(error), 200)}") from error
        if connection.sock is not None:
            connection.sock.settimeout(max(0.001, min(self.options.read_timeout, self.deadline.remaining())))

    def _credentials(self, parsed: urllib.parse.SplitResult) -> tuple[str, str] | None:
        if parsed.username:
            return urllib.parse.unquote(parsed.username), urllib.parse.unquote(parsed.password or "")
        return netrc_credentials(parsed.hostname or "", self.options)


def _checked_url(url: str) -> urllib.parse.SplitResult:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise TransportError(f"not an http(s) URL with a host: {display_source(url)}")
    try:
        parsed.port  # noqa: B018 - validates the port
    except ValueError as error:
        raise TransportError(f"invalid port in {display_source(url)}") from error
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise TransportError(f"URL with spaces or control characters: {display_source(url)}")
    return parsed


def _netloc(parsed: urllib.parse.SplitResult) -> str:
    host = parsed.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parsed.port}" if parsed.port else host


def _proxy_authorization(proxy: urllib.parse.SplitResult) -> str:
    return _basic(urllib.parse.unquote(proxy.username or ""), urllib.parse.unquote(proxy.password or ""))


def bounded_body(exchange: Exchange, cap: int) -> _Body:
    """The response body of `exchange`, read under its deadline and cut past `cap` bytes (TooLarge)."""
    return _Body(exchange, cap)


class _Body:
    """A response body with a byte cap and the deadline; errors become TransportError/TooLarge."""

    def __init__(self, exchange: Exchange, cap: int) -> None:
        self._exchange = exchange
        self._response = exchange.response
        self._cap = cap
        self.received = 0

    def _deadline_error(self) -> TransportError:
        return TransportError(f"deadline reached after {self.received} bytes of the body (server too slow)")

    def read(self, size: int = -1, /) -> bytes:
        exchange = self._exchange
        remaining = exchange.deadline.remaining()
        if remaining <= 0 or exchange.watchdog.fired:
            raise self._deadline_error()
        sock = exchange.connection.sock
        if sock is not None:
            sock.settimeout(max(0.001, min(exchange.read_timeout, remaining)))
        try:
            # read1: one network read at a time, so the deadline is checked between packets.
            data = self._response.read1(size if size > 0 else envelope.IO_BLOCK)
        except TimeoutError as error:
            if exchange.deadline.passed() or exchange.watchdog.fired:
                raise self._deadline_error() from error
            raise TransportError(f"read timed out after {self.received} bytes") from error
        except (OSError, http.client.HTTPException, ValueError) as error:
            if exchange.watchdog.fired:
                raise self._deadline_error() from error
            raise TransportError(
                f"connection failed after {self.received} bytes: {printable(repr(error), 200)}"
            ) from error
        if not data:
            if exchange.watchdog.fired:
                raise self._deadline_error()
            if self._response.length:
                raise TransportError(f"connection closed {self._response.length} bytes before Content-Length")
        self.received += len(data)
        if self.received > self._cap:
            raise TooLarge(f"server sent more than the {self._cap}-byte cap")
        return data


# --- local files ----------------------------------------------------------------------------------


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
    shown = printable(path, 200)
    flags = os.O_RDONLY | (0 if follow_symlinks else os.O_NOFOLLOW) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if not follow_symlinks and error.errno == errno.ELOOP:
            raise TransportError(f"{shown}: is a symbolic link, refused") from error
        raise TransportError(f"{shown}: cannot open ({error.strerror})") from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TransportError(f"{shown}: not a regular file, refused")
        if info.st_size > cap:
            raise TooLarge(f"{shown}: {info.st_size} bytes exceeds the {cap}-byte cap")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# --- the pull -------------------------------------------------------------------------------------


class Puller:
    """Pull into one store. `sleep` is injectable so tests need not wait between retries."""

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
        """Fetch, verify, store and record. Raises a SnapshotRejected subclass when nothing was accepted.

        A snapshot that verified but lost too many patients is not an error here: the outcome is
        "quarantined" (recorded, journaled); the command line turns it into its own exit code.
        """
        self.store.require_initialized()
        label = printable(label or display_source(source), 200)
        attempts = 0
        try:
            if urllib.parse.urlsplit(source).scheme in ("http", "https"):
                result, validators, attempts = self._pull_http(source, now)
            else:
                attempts = 1
                result = self._pull_path(Path(source).expanduser(), now, follow_symlinks)
                validators = None
        except SnapshotRejected as error:
            self.store.record_attempt(source=label, outcome="rejected", reason=error.reason, detail=str(error), now=now)
            journal_pull(self.store, "pull_rejected", label, None, error.reason)
            log.error("pull from %s rejected (%s): %s", label, error.reason, printable(error))
            raise
        except StoreError as error:
            # The file may be fine but this appliance cannot store it (disk full, permissions): say so too.
            try:
                self.store.record_attempt(source=label, outcome="error", reason="store", detail=str(error), now=now)
            except ContinuityError as record_error:
                log.error("could not record the failed pull: %s", record_error)
            raise
        header = result.header if result is not None else None
        outcome = result.outcome if result is not None else "unchanged"
        detail = result.detail if result is not None else None
        self.store.record_attempt(
            source=label,
            outcome=outcome,
            reason="quarantined" if outcome == "quarantined" else None,
            detail=detail,
            sequence=header.sequence if header else None,
            now=now,
            conditional=validators,
        )
        if outcome == "accepted":
            assert header is not None
            journal_pull(self.store, "pull_accepted", label, header.sequence, None)
        elif outcome == "quarantined" and result is not None and not result.again:
            assert header is not None
            journal_pull(self.store, "pull_quarantined", label, header.sequence, "quarantined")
        if outcome == "quarantined":
            log.warning("pull from %s: quarantined (%s)", label, detail)
        else:
            log.info("pull from %s: %s", label, outcome)
        return PullResult(outcome, label, header, attempts, detail)

    # -- local files

    def _pull_path(self, path: Path, now: dt.datetime | None, follow_symlinks: bool) -> IngestResult:
        with open_regular_file(path, self.cap, follow_symlinks=follow_symlinks) as handle:
            return self.store.ingest(_FileBody(handle, self.cap), now=now)

    # -- http(s)

    def _pull_http(self, url: str, now: dt.datetime | None) -> tuple[IngestResult | None, dict[str, str], int]:
        deadline = Deadline(self.options.deadline)
        client = HttpClient(self.options, deadline)
        delay = self.options.backoff
        attempt = 0
        while True:
            attempt += 1
            try:
                result, validators = self._http_once(client, url, now)
                return result, validators, attempt
            except Retryable as error:
                tried = f"{attempt} attempt{'s' if attempt > 1 else ''}"
                if deadline.passed():
                    raise TransportError(
                        f"deadline of {deadline.seconds:g} s for the whole pull reached ({error}; {tried})"
                    ) from error
                if attempt > self.options.retries:
                    raise TransportError(f"{error} (after {tried})") from error
                if deadline.remaining() <= delay:
                    raise TransportError(
                        f"{error} (after {tried}; no time left for another within the {deadline.seconds:g}-s deadline)"
                    ) from error
                log.warning("pull attempt %d failed (%s): retrying in %.1f s", attempt, error, delay)
                self.sleep(delay)
                delay *= 2

    def _http_once(
        self, client: HttpClient, url: str, now: dt.datetime | None
    ) -> tuple[IngestResult | None, dict[str, str]]:
        """One attempt, following redirects. (None, validators) means 304: the server has nothing new."""
        label = display_source(url)
        known = self.store.conditional(label)
        for _ in range(MAX_REDIRECTS + 1):
            parsed = urllib.parse.urlsplit(url)
            headers = {"Accept-Encoding": "identity"}
            if "etag" in known:
                headers["If-None-Match"] = known["etag"]
            if "last_modified" in known:
                headers["If-Modified-Since"] = known["last_modified"]
            with client.request("GET", url, headers) as exchange:
                response = exchange.response
                status = response.status
                if status in (301, 302, 303, 307, 308):
                    location = response.getheader("Location")
                    if not location:
                        raise TransportError(f"redirect {status} without Location")
                    target = urllib.parse.urljoin(url, location.strip())
                    if urllib.parse.urlsplit(target).scheme not in ("http", "https"):
                        raise TransportError(f"redirect {status} to something that is not http(s)")
                    if parsed.scheme == "https" and not target.startswith("https://"):
                        raise TransportError("refusing a redirect from https to plain http")
                    url = target
                    continue
                if status == 304:
                    return None, known
                if status == 407:  # only a proxy answers this (http through a proxy; https fails at CONNECT)
                    raise TransportError(f"the proxy answered 407 {exchange.reason}: check the credentials in its URL")
                if status in RETRYABLE_STATUS:
                    raise Retryable(f"server answered {status} {exchange.reason}")
                if status != 200:
                    raise TransportError(f"server answered {status} {exchange.reason}")
                length = response.getheader("Content-Length")
                if length is not None and length.strip().isdigit() and int(length) > self.cap:
                    raise TooLarge(f"server announces {int(length)} bytes, over the {self.cap}-byte cap")
                try:
                    result = self.store.ingest(_Body(exchange, self.cap), now=now)
                except TransportError as error:  # the connection broke mid-body: worth another try
                    raise Retryable(str(error)) from error
                validators = {}
                if etag := response.getheader("ETag"):
                    validators["etag"] = etag
                if modified := response.getheader("Last-Modified"):
                    validators["last_modified"] = modified
                return result, validators
        raise TransportError(f"more than {MAX_REDIRECTS} redirects")


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


__all__ = [
    "Deadline",
    "HttpClient",
    "PullOptions",
    "PullResult",
    "Puller",
    "Retryable",
    "display_source",
    "journal_pull",
    "netrc_credentials",
    "open_regular_file",
    "proxy_for",
    "pull",
    "utcnow",
]
