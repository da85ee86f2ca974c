"""Pull over a real HTTP(S) server on 127.0.0.1 and from paths: caps, timeouts, retries, conditional requests."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from continuity import pull as pull_module
from continuity.errors import Expired, Malformed, TooLarge, TransportError
from continuity.journal import Journal
from continuity.pull import Puller, PullOptions, display_source
from tests.transport_helpers import (
    NOW,
    Rig,
    SnapshotHandler,
    SnapshotServer,
    assert_untouched,
    isolate_network_environment,
    make_rig,
    proxying,
    serving,
    use_weak_kdf,
)


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_weak_kdf(monkeypatch)
    isolate_network_environment(monkeypatch, tmp_path / "user-home")


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path)


@pytest.fixture
def server() -> object:
    with serving() as running:
        yield running


def puller(rig: Rig, sleeps: list[float] | None = None, *, real_sleep: bool = False, **options: object) -> Puller:
    recorded = sleeps if sleeps is not None else []
    sleep = time.sleep if real_sleep else recorded.append
    return Puller(rig.store, PullOptions(**options), sleep=sleep)  # type: ignore[arg-type]


def last_attempt(rig: Rig) -> dict[str, object]:
    attempts = rig.store.read_state()["attempts"]
    assert isinstance(attempts, list)
    result: dict[str, object] = attempts[0]
    return result


def test_http_pull_then_unchanged_costs_one_small_request(rig: Rig, server: SnapshotServer) -> None:
    server.files["/snap"] = rig.make(1).read_bytes()
    result = puller(rig).pull(server.url("/snap"), now=NOW)
    assert result.outcome == "accepted"
    assert result.header is not None and result.header.sequence == 1
    assert rig.current_bytes() == server.files["/snap"]
    assert last_attempt(rig)["outcome"] == "accepted"

    again = puller(rig).pull(server.url("/snap"), now=NOW)
    assert again.outcome == "unchanged"
    assert len(server.requests) == 2
    assert server.requests[1][1]["If-None-Match"] == server.requests[1][1]["If-None-Match"].strip()
    assert "If-Modified-Since" in server.requests[1][1]
    assert last_attempt(rig)["outcome"] == "unchanged"
    kinds = [entry.action for entry in Journal(rig.home).entries()]
    assert kinds.count("pull_accepted") == 1


def test_new_snapshot_replaces_the_current_and_retention_keeps_seven(rig: Rig, server: SnapshotServer) -> None:
    for sequence in range(1, 10):
        server.files["/snap"] = rig.make(sequence).read_bytes()
        assert puller(rig).pull(server.url("/snap"), now=NOW).outcome == "accepted"
    names = [p.name for p in rig.store.snapshot_files()]
    assert names == [f"{n:020d}.snap" for n in range(9, 2, -1)]
    assert rig.store.read_state()["current"]["sequence"] == 9


def test_server_without_validators_same_file_is_a_no_op(rig: Rig, server: SnapshotServer) -> None:
    data = rig.make(1).read_bytes()

    def plain(handler: SnapshotHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    server.behaviour["/plain"] = plain
    assert puller(rig).pull(server.url("/plain"), now=NOW).outcome == "accepted"
    before = rig.snapshot_state()
    assert puller(rig).pull(server.url("/plain"), now=NOW).outcome == "unchanged"
    assert_untouched(rig, before)


def test_rejected_pull_is_recorded_and_journaled(rig: Rig, server: SnapshotServer) -> None:
    server.files["/snap"] = rig.make(1).read_bytes()
    puller(rig).pull(server.url("/snap"), now=NOW)
    before = rig.snapshot_state()
    server.files["/snap"] = rig.make(
        2, created_at=NOW - dt.timedelta(minutes=30), expires_in=dt.timedelta(minutes=1)
    ).read_bytes()
    with pytest.raises(Expired):
        puller(rig).pull(server.url("/snap"), now=NOW)
    assert_untouched(rig, before)
    attempt = last_attempt(rig)
    assert attempt["outcome"] == "rejected" and attempt["reason"] == "expired"
    rejected = [e for e in Journal(rig.home).entries() if e.action == "pull_rejected"]
    assert len(rejected) == 1 and rejected[0].details["reason"] == "expired"


def test_endless_body_of_zeros_stops_at_the_magic(rig: Rig, server: SnapshotServer) -> None:
    def endless(handler: SnapshotHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        while True:
            handler.wfile.write(bytes(65536))

    server.behaviour["/endless"] = endless
    before = rig.snapshot_state()
    with pytest.raises(Malformed, match="magic"):
        puller(rig).pull(server.url("/endless"), now=NOW)
    assert_untouched(rig, before)


def test_endless_body_after_a_valid_file_is_cut_at_one_extra_byte(rig: Rig, server: SnapshotServer) -> None:
    data = rig.make(1).read_bytes()

    def endless(handler: SnapshotHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(data)
        while True:
            handler.wfile.write(b"\xff" * 65536)

    server.behaviour["/endless"] = endless
    before = rig.snapshot_state()
    with pytest.raises(Malformed, match="trailing"):
        puller(rig).pull(server.url("/endless"), now=NOW)
    assert_untouched(rig, before)


def test_endless_body_is_capped_by_the_byte_budget(rig: Rig, server: SnapshotServer) -> None:
    data = rig.make(1).read_bytes()

    def endless(handler: SnapshotHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(data[:200])
        while True:
            handler.wfile.write(b"\xff" * 65536)

    server.behaviour["/endless"] = endless
    before = rig.snapshot_state()
    with pytest.raises((TooLarge, Malformed)):
        puller(rig, max_file_size=150).pull(server.url("/endless"), now=NOW)
    assert_untouched(rig, before)


def test_announced_length_over_the_cap_is_refused_before_reading(rig: Rig, server: SnapshotServer) -> None:
    def huge(handler: SnapshotHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(1 << 40))
        handler.end_headers()

    server.behaviour["/huge"] = huge
    with pytest.raises(TooLarge, match="announces"):
        puller(rig).pull(server.url("/huge"), now=NOW)
    assert rig.store.staging_files() == []


def test_slow_drip_server_hits_the_deadline(rig: Rig, server: SnapshotServer) -> None:
    data = rig.make(1).read_bytes()

    def drip(handler: SnapshotHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        for byte in data:
            handler.wfile.write(bytes([byte]))
            time.sleep(0.02)

    server.behaviour["/drip"] = drip
    before = rig.snapshot_state()
    started = time.monotonic()
    with pytest.raises(TransportError, match="deadline"):
        puller(rig, deadline=0.5, read_timeout=5, retries=0).pull(server.url("/drip"), now=NOW)
    assert time.monotonic() - started < 5
    assert_untouched(rig, before)


def test_silent_server_times_out_with_bounded_retries_and_backoff(rig: Rig, server: SnapshotServer) -> None:
    release = threading.Event()
    server.behaviour["/silent"] = lambda handler: release.wait(10) and None
    sleeps: list[float] = []
    try:
        with pytest.raises(TransportError, match="after 3 attempts"):
            puller(rig, sleeps, read_timeout=0.3, retries=2, backoff=1.5).pull(server.url("/silent"), now=NOW)
    finally:
        release.set()
    assert sleeps == [1.5, 3.0]
    assert len(server.requests) == 3
    assert last_attempt(rig)["reason"] == "transport"


def test_server_error_then_success_is_retried(rig: Rig, server: SnapshotServer) -> None:
    data = rig.make(1).read_bytes()
    calls = []

    def flaky(handler: SnapshotHandler) -> None:
        calls.append(1)
        if len(calls) == 1:
            handler.send_error(503)
            return
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    server.behaviour["/flaky"] = flaky
    result = puller(rig).pull(server.url("/flaky"), now=NOW)
    assert (result.outcome, result.attempts) == ("accepted", 2)


def test_connection_cut_mid_body_is_retried(rig: Rig, server: SnapshotServer) -> None:
    data = rig.make(1).read_bytes()
    calls = []

    def cut(handler: SnapshotHandler) -> None:
        calls.append(1)
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data if len(calls) > 1 else data[: len(data) // 2])
        handler.close_connection = True

    server.behaviour["/cut"] = cut
    result = puller(rig).pull(server.url("/cut"), now=NOW)
    assert (result.outcome, result.attempts) == ("accepted", 2)
    assert rig.store.staging_files() == []


def test_not_found_is_not_retried(rig: Rig, server: SnapshotServer) -> None:
    sleeps: list[float] = []
    with pytest.raises(TransportError, match="404"):
        puller(rig, sleeps).pull(server.url("/nothing"), now=NOW)
    assert sleeps == []


def test_connection_refused(rig: Rig) -> None:
    with SnapshotServer() as closed:
        url = closed.url("/snap")
    with pytest.raises(TransportError, match="cannot connect"):
        puller(rig, retries=1, backoff=0).pull(url, now=NOW)


def test_pull_from_a_path_and_refusals(rig: Rig) -> None:
    path = rig.make(1)
    assert puller(rig).pull(str(path), now=NOW).outcome == "accepted"
    with pytest.raises(TransportError, match="not a regular file"):
        puller(rig).pull(str(rig.tmp), now=NOW)
    with pytest.raises(TransportError, match="cannot open"):
        puller(rig).pull(str(rig.tmp / "missing.snap"), now=NOW)
    with pytest.raises(TooLarge):
        puller(rig, max_file_size=100).pull(str(rig.make(2)), now=NOW)


def test_display_source_drops_credentials_and_query() -> None:
    assert display_source("https://user:secret@example.org:8443/a/snap?token=x") == "https://example.org:8443/a/snap"


# --- TLS: verification always on, optional pinned CA ------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> object:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving(context) as running:
        running.ca_file = cert  # type: ignore[attr-defined]
        yield running


def test_https_with_pinned_ca(rig: Rig, tls_server: SnapshotServer) -> None:
    tls_server.files["/snap"] = rig.make(1).read_bytes()
    url = tls_server.url("/snap").replace("http://", "https://")
    with pytest.raises(TransportError, match="TLS verification failed"):
        puller(rig, retries=0).pull(url, now=NOW)
    ca_file = tls_server.ca_file  # type: ignore[attr-defined]
    assert puller(rig, ca_file=ca_file).pull(url, now=NOW).outcome == "accepted"


def test_module_exports_are_stable() -> None:
    assert callable(pull_module.pull)


def test_redirect_and_basic_credentials_never_recorded(rig: Rig, server: SnapshotServer) -> None:
    # The redirect goes to "localhost", another host name for the same loopback server, to show that
    # credentials are not forwarded across hosts. A minimal chroot may have no /etc/hosts entry for it.
    try:
        socket.gethostbyname("localhost")
    except OSError:
        pytest.skip("'localhost' does not resolve on this machine (no /etc/hosts entry)")
    data = rig.make(1).read_bytes()

    def moved(handler: SnapshotHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", server.url("/final").replace("127.0.0.1", "localhost"))
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def final(handler: SnapshotHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    server.behaviour["/old?token=abc"] = moved
    server.behaviour["/final"] = final
    url = server.url("/old").replace("http://", "http://cabinet:s3cret@") + "?token=abc"
    assert puller(rig).pull(url, now=NOW).outcome == "accepted"
    assert server.requests[0][1]["Authorization"] == "Basic Y2FiaW5ldDpzM2NyZXQ="
    assert "Authorization" not in server.requests[1][1]  # not forwarded to another host
    state_text = (rig.home / "state.json").read_text()
    assert "s3cret" not in state_text and "token" not in state_text


# --- issue #13: one deadline for the whole pull, whatever the server drips ----------------------------


def drip_forever(handler: SnapshotHandler, prefix: bytes, unit: bytes, stop: threading.Event) -> None:
    """Send `prefix`, then `unit` every 50 ms: never silent long enough for a read timeout.

    Bounded at 8 s so that a pull without a deadline (the bug) fails the test instead of hanging it.
    """
    handler.wfile.write(prefix)
    ends = time.monotonic() + 8
    while not stop.is_set() and time.monotonic() < ends:
        handler.wfile.write(unit)
        time.sleep(0.05)


def pull_against_drip(rig: Rig, server: SnapshotServer, prefix: bytes, unit: bytes) -> float:
    stop = threading.Event()
    server.behaviour["/drip"] = lambda handler: drip_forever(handler, prefix, unit, stop)
    before = rig.snapshot_state()
    started = time.monotonic()
    try:
        with pytest.raises(TransportError, match="deadline"):
            puller(rig, deadline=1.0, read_timeout=5, retries=2).pull(server.url("/drip"), now=NOW)
    finally:
        stop.set()
    assert_untouched(rig, before)
    return time.monotonic() - started


def test_a_status_line_dripped_byte_by_byte_is_cut_at_the_deadline(rig: Rig, server: SnapshotServer) -> None:
    # Before: each byte arrived within the read timeout, so the pull waited as long as the server liked.
    assert pull_against_drip(rig, server, b"HTTP/1.1 200 ", b"O") < 3


def test_a_header_dripped_byte_by_byte_is_cut_at_the_deadline(rig: Rig, server: SnapshotServer) -> None:
    assert pull_against_drip(rig, server, b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a") < 3


def test_a_chunk_size_line_that_never_ends_is_cut_at_the_deadline(rig: Rig, server: SnapshotServer) -> None:
    prefix = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert pull_against_drip(rig, server, prefix, b"0") < 3


def test_the_deadline_bounds_every_attempt_and_wait_together(rig: Rig, server: SnapshotServer) -> None:
    # Before: the deadline applied to each attempt, and the waits between attempts came on top.
    server.behaviour["/busy"] = lambda handler: handler.send_error(503)
    started = time.monotonic()
    with pytest.raises(TransportError, match="no time left|deadline"):
        puller(rig, real_sleep=True, deadline=1.5, retries=10, backoff=0.2).pull(server.url("/busy"), now=NOW)
    assert time.monotonic() - started < 2.5
    assert 3 <= len(server.requests) <= 5  # waits of 0.2, 0.4, 0.8 s fit; 1.6 s does not


def test_default_deadline_ends_the_pull_before_systemd_kills_it() -> None:
    # The unit's TimeoutStartSec would kill a pull that runs longer: killed, it records nothing. The
    # behaviour (one deadline for everything) is tested above; this checks the default against the unit.
    unit = (Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "continuity-pull.service").read_text()
    lines = [line.split("=", 1)[1].strip() for line in unit.splitlines() if line.startswith("TimeoutStartSec=")]
    if not lines:
        pytest.skip("the unit sets no TimeoutStartSec")
    from continuity.publish import parse_duration

    limit = parse_duration(lines[-1].replace("min", "m")).total_seconds()
    options = PullOptions()
    assert options.deadline + options.connect_timeout < limit


# --- issue #13: nothing a server answers can grow the state or make an alarm vanish -------------------


def test_huge_reason_phrases_neither_grow_the_state_nor_drop_the_alarm(rig: Rig, server: SnapshotServer) -> None:
    from continuity import status
    from continuity.errors import UntrustedSigner
    from continuity.store import MAX_DETAIL

    server.files["/snap"] = rig.make(1).read_bytes()
    puller(rig).pull(server.url("/snap"), now=NOW)
    import nacl.signing

    server.files["/snap"] = rig.make(2, signing_key=nacl.signing.SigningKey.generate()).read_bytes()
    with pytest.raises(UntrustedSigner):
        puller(rig).pull(server.url("/snap"), now=NOW)
    assert status.compute_status(rig.home, now=NOW).code == status.CRITICAL

    def not_found(handler: SnapshotHandler) -> None:
        # 65,000 bytes of 0xE9: latin-1 "é", written "\u00e9" (6 bytes) in JSON: 390 KB per attempt.
        handler.wfile.write(b"HTTP/1.1 404 " + b"\xe9" * 65000 + b"\r\nContent-Length: 0\r\n\r\n")

    server.behaviour["/gone"] = not_found
    for _ in range(3):
        with pytest.raises(TransportError, match="404"):
            puller(rig).pull(server.url("/gone"), now=NOW)
    assert (rig.home / "state.json").stat().st_size < 64 * 1024
    last = last_attempt(rig)
    assert isinstance(last["detail"], str) and len(last["detail"]) <= MAX_DETAIL
    report = status.compute_status(rig.home, now=NOW)
    assert report.code == status.CRITICAL
    assert any("untrusted_signer" in problem for problem in report.problems)


def test_hostile_validators_are_not_sent_back(rig: Rig, server: SnapshotServer) -> None:
    data = rig.make(1).read_bytes()

    def odd(handler: SnapshotHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("ETag", '"ok\x7f' + "x" * 5000 + '"')
        handler.send_header("Last-Modified", "Sat, 28 Nov 2026 05:00:00 GMT")
        handler.end_headers()
        handler.wfile.write(data)

    server.behaviour["/odd"] = odd
    puller(rig).pull(server.url("/odd"), now=NOW)
    puller(rig).pull(server.url("/odd"), now=NOW)
    second = server.requests[1][1]
    assert "If-None-Match" not in second  # not printable ASCII, and too long: dropped, never stored
    assert second["If-Modified-Since"] == "Sat, 28 Nov 2026 05:00:00 GMT"


# --- issue #12 item 8: the standard proxy variables and netrc ---------------------------------------


def test_https_through_a_proxy_with_credentials_never_recorded(
    rig: Rig, tls_server: SnapshotServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tls_server.files["/snap"] = rig.make(1).read_bytes()
    url = tls_server.url("/snap").replace("http://", "https://cabinet:s3cret@")
    ca_file = tls_server.ca_file  # type: ignore[attr-defined]
    with proxying(credentials="proxyuser:pr0xy-pass") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url("proxyuser:pr0xy-pass"))
        with caplog.at_level("DEBUG"):
            assert puller(rig, ca_file=ca_file).pull(url, now=NOW).outcome == "accepted"
        assert [(method, target) for method, target, _ in proxy.seen] == [
            ("CONNECT", tls_server.url("")[len("http://") :])
        ]
        connect_headers = proxy.seen[0][2]
        assert connect_headers["Proxy-Authorization"] == "Basic cHJveHl1c2VyOnByMHh5LXBhc3M="
        assert "Authorization" not in connect_headers  # the server's credentials travel inside TLS only
    server_headers = tls_server.requests[0][1]
    assert server_headers["Authorization"] == "Basic Y2FiaW5ldDpzM2NyZXQ="
    assert "Proxy-Authorization" not in server_headers
    recorded = (rig.home / "state.json").read_text() + "".join(p.read_text() for p in (rig.home / "journal").glob("*"))
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in ("pr0xy-pass", "proxyuser", "s3cret"):
        assert secret not in recorded and secret not in logged


def test_http_through_a_proxy_and_no_proxy(rig: Rig, server: SnapshotServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.files["/snap"] = rig.make(1).read_bytes()
    with proxying() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url())
        assert puller(rig).pull(server.url("/snap"), now=NOW).outcome == "accepted"
        assert [(method, target) for method, target, _ in proxy.seen] == [("GET", server.url("/snap"))]
        # NO_PROXY names the host: straight to the server, the proxy sees nothing more.
        monkeypatch.setenv("NO_PROXY", "example.org, 127.0.0.1")
        assert puller(rig).pull(server.url("/snap"), now=NOW).outcome == "unchanged"
        assert len(proxy.seen) == 1 and len(server.requests) == 2


def test_a_proxy_that_is_down_or_refuses(rig: Rig, server: SnapshotServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.files["/snap"] = rig.make(1).read_bytes()
    with SnapshotServer() as closed:
        down = closed.url("")
    monkeypatch.setenv("HTTP_PROXY", down)
    with pytest.raises(TransportError, match="through the proxy"):
        puller(rig, retries=1, backoff=0).pull(server.url("/snap"), now=NOW)
    assert server.requests == []
    with proxying(credentials="a:b") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url("a:wrong"))
        with pytest.raises(TransportError, match="407"):
            puller(rig).pull(server.url("/snap"), now=NOW)
    monkeypatch.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(TransportError, match="only http:// proxies"):
        puller(rig).pull(server.url("/snap"), now=NOW)


def test_https_proxy_refusing_the_tunnel_is_not_retried(
    rig: Rig, tls_server: SnapshotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    with proxying(credentials="a:b") as proxy:
        monkeypatch.setenv("https_proxy", proxy.url())
        url = tls_server.url("/snap").replace("http://", "https://")
        with pytest.raises(TransportError, match="407"):
            puller(rig, sleeps, ca_file=tls_server.ca_file).pull(url, now=NOW)  # type: ignore[attr-defined]
        assert len(proxy.seen) == 1 and sleeps == []


def test_netrc_credentials_go_to_their_host_only(rig: Rig, server: SnapshotServer, tmp_path: Path) -> None:
    try:
        socket.gethostbyname("localhost")
    except OSError:
        pytest.skip("'localhost' does not resolve on this machine (no /etc/hosts entry)")
    data = rig.make(1).read_bytes()
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine 127.0.0.1 login cabinet password n3trc-pass\ndefault login any password leak\n")
    netrc_file.chmod(0o600)

    def moved(handler: SnapshotHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", server.url("/final").replace("127.0.0.1", "localhost"))
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server.behaviour["/old"] = moved
    server.files["/final"] = data
    assert puller(rig, netrc_file=netrc_file).pull(server.url("/old"), now=NOW).outcome == "accepted"
    assert server.requests[0][1]["Authorization"] == "Basic Y2FiaW5ldDpuM3RyYy1wYXNz"
    assert "Authorization" not in server.requests[1][1]  # localhost has no entry; `default` is never used
    assert "n3trc-pass" not in (rig.home / "state.json").read_text()


def test_netrc_is_found_where_systemd_and_users_put_it(
    rig: Rig, server: SnapshotServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.files["/snap"] = rig.make(1).read_bytes()
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "netrc").write_text("machine 127.0.0.1 login unit password from-systemd\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    puller(rig).pull(server.url("/snap"), now=NOW)
    assert server.requests[-1][1]["Authorization"] == "Basic dW5pdDpmcm9tLXN5c3RlbWQ="
    broken = tmp_path / "broken-netrc"
    broken.write_text("machine 127.0.0.1 login x password secret-token extra-garbage\n")
    monkeypatch.setenv("NETRC", str(broken))
    with pytest.raises(TransportError, match="not a valid netrc file") as caught:
        puller(rig).pull(server.url("/snap"), now=NOW)
    assert "secret-token" not in str(caught.value)
