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
    make_rig,
    serving,
    use_weak_kdf,
)


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path)


@pytest.fixture
def server() -> object:
    with serving() as running:
        yield running


def puller(rig: Rig, sleeps: list[float] | None = None, **options: object) -> Puller:
    recorded = sleeps if sleeps is not None else []
    return Puller(rig.store, PullOptions(**options), sleep=recorded.append)  # type: ignore[arg-type]


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
