"""The journal witness over real HTTP on loopback: the publisher keeps the heads, the appliance checks them.

Adversarial cases from issue 13: a replayed head, a head from another appliance, a head going
backwards, a forked head; and the journal attacks a careful insider hides locally (head record
rewritten too) that only the witness sees.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import nacl.signing
import pytest
from click.testing import CliRunner

from continuity import journal as journal_module
from continuity import keys, witness
from continuity.cli import cli
from continuity.errors import WitnessError
from continuity.journal import Journal, JournalEntry, canonical_json, verify_journal
from continuity.session import Session
from tests.transport_helpers import PASSPHRASE, USER, Rig, make_rig, proxying, use_weak_kdf


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """A real WSGI server on 127.0.0.1 in a thread; yields its base URL."""
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    use_weak_kdf(monkeypatch)
    monkeypatch.delenv("CONTINUITY_HOME", raising=False)
    rig = make_rig(tmp_path)
    rig.ingest(rig.make(1))
    session_round(rig)
    return rig


def session_round(rig: Rig, views: int = 2) -> None:
    session = Session.unlock(rig.home, USER, PASSPHRASE)
    for _ in range(views):
        session.open_patient("pat-qual")
    session.lock()


@pytest.fixture
def ledger(tmp_path: Path, rig: Rig) -> witness.WitnessLedger:
    return witness.WitnessLedger(tmp_path / "witness-ledger", rig.publisher)


def url_for(base: str, rig: Rig) -> str:
    found = witness.witness_url(f"{base}/cabinet/snapshot.snap", bytes(keys.appliance_verify_key(rig.home)).hex())
    assert found is not None
    return found


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def truncate_carefully(rig: Rig, keep: int) -> None:
    """Cut the journal and rewrite journal.head to match: what verify alone cannot see."""
    path = next((rig.home / "journal").glob("*.jsonl"))
    kept = lines(path)[:keep]
    path.write_bytes(b"".join(kept))
    last = JournalEntry.from_line(kept[-1])
    (rig.home / journal_module.HEAD_FILE).unlink()  # rewritten by one who knows its format
    journal_module.write_head_record(rig.home, last)
    (rig.home / journal_module.CHECKPOINT_KEY_FILE).unlink(missing_ok=True)


def test_the_head_is_witnessed_and_the_journal_checked_against_it(rig: Rig, ledger: witness.WitnessLedger) -> None:
    with serving(witness.wsgi_app(ledger)) as base:
        url = url_for(base, rig)
        sent = witness.send_head(rig.home, url)
        assert sent is not None and not sent.unchanged and sent.receipt["number"] == 1
        head = Journal(rig.home).head()
        assert head is not None
        assert sent.receipt["head"]["index"] == head.index - 1  # the witness_sent entry came after
        fetched = witness.fetch_receipt(url, rig.home)
        assert fetched == sent.receipt
    entries = list(Journal(rig.home).entries())
    assert entries[-1].action == "witness_sent" and entries[-1].details["receipt"] == 1
    # the publisher keeps every head it accepted
    key_id = witness.appliance_key_id(sent.receipt["appliance_key"])
    kept = (ledger.directory / key_id / witness.HEADS_FILE).read_text().splitlines()
    assert len(kept) == 1 and json.loads(kept[0])["receipt"]["number"] == 1
    report = verify_journal(rig.home, witness=witness.witnessed_head(fetched))
    assert report.ok, report.problems
    assert report.witnessed is not None


def test_a_careful_truncation_is_seen_by_the_witness_only(rig: Rig, ledger: witness.WitnessLedger) -> None:
    with serving(witness.wsgi_app(ledger)) as base:
        url = url_for(base, rig)
        witness.send_head(rig.home, url)
        receipt = witness.fetch_receipt(url, rig.home)
        truncate_carefully(rig, keep=5)
        (rig.home / witness.WITNESS_DIR / witness.RECEIPT_FILE).unlink()  # the local receipt deleted too
        assert verify_journal(rig.home).ok  # nothing local says anything any more...
        problems = verify_journal(rig.home, witness=witness.witnessed_head(receipt)).problems
        assert {p.kind for p in problems} == {"witness"}  # ...the witness does
        assert any("supprimées" in p.message_fr for p in problems)
        # and the next nightly send is refused as going backwards, which is journaled
        with pytest.raises(WitnessError, match="409"):
            witness.send_head(rig.home, url)
    assert list(Journal(rig.home).entries())[-1].action == "witness_failed"


def test_the_local_receipt_is_checked_by_every_verify(rig: Rig, ledger: witness.WitnessLedger) -> None:
    with serving(witness.wsgi_app(ledger)) as base:
        witness.send_head(rig.home, url_for(base, rig))
    truncate_carefully(rig, keep=5)
    assert "witness" in {p.kind for p in verify_journal(rig.home).problems}
    # and a receipt edited to match the cut journal no longer verifies
    path = rig.home / witness.WITNESS_DIR / witness.RECEIPT_FILE
    receipt = json.loads(path.read_text())
    receipt["head"]["index"] = 4
    path.write_text(json.dumps(receipt))
    problems = verify_journal(rig.home).problems
    assert [p.kind for p in problems] == ["witness"] and "invalide" in problems[0].message_fr


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    return witness._exchange(url, "POST", body, ca_file=None, timeout=5, deadline=10)


def test_a_replayed_head_is_refused_and_the_same_head_is_idempotent(rig: Rig, ledger: witness.WitnessLedger) -> None:
    with serving(witness.wsgi_app(ledger)) as base:
        url = url_for(base, rig)
        old = canonical_json(witness.head_request(rig.home) or {})
        assert _post(url, old)[0] == 200
        session_round(rig)
        newer = witness.send_head(rig.home, url)
        assert newer is not None and newer.receipt["number"] == 2
        status, answer = _post(url, old)  # an old, validly signed request played again
        assert status == 409 and b"backwards" in answer
        again = witness.send_head(rig.home, url)  # nothing new since: same receipt, no new line
        assert again is not None and again.receipt["number"] == 3  # the witness_sent entry moved the head
        status, answer = _post(url, canonical_json(witness.head_request(rig.home) or {}))
        assert status == 200


def test_a_head_from_another_appliance_is_refused(rig: Rig, ledger: witness.WitnessLedger, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    other = make_rig(tmp_path / "other")
    other.ingest(other.make(1))
    session_round(other)
    with serving(witness.wsgi_app(ledger)) as base:
        ours = url_for(base, rig)
        theirs = canonical_json(witness.head_request(other.home) or {})
        status, answer = _post(ours, theirs)  # posted to our ledger
        assert status == 403 and b"another appliance" in answer
        # claiming our key in the request while the checkpoint is signed by theirs
        forged = json.loads(theirs)
        ours_hex = bytes(keys.appliance_verify_key(rig.home)).hex()
        forged["appliance_key"] = ours_hex
        forged["checkpoint"]["appliance_key"] = ours_hex
        status, answer = _post(ours, canonical_json(forged))
        assert status == 403 and b"signature" in answer
        assert ledger.last_receipt(witness.appliance_key_id(ours_hex)) is None


def test_a_forked_head_is_refused(rig: Rig, ledger: witness.WitnessLedger) -> None:
    with serving(witness.wsgi_app(ledger)) as base:
        url = url_for(base, rig)
        request = witness.head_request(rig.home) or {}
        assert _post(url, canonical_json(request))[0] == 200
        request["head"] = {"index": request["head"]["index"], "hash": "ab" * 32}
        status, answer = _post(url, canonical_json(request))
        assert status == 409 and b"rewritten" in answer


def test_only_enrolled_appliances_when_the_witness_is_told(rig: Rig, tmp_path: Path) -> None:
    enrolled = witness.WitnessLedger(tmp_path / "l2", rig.publisher, allowed=["00" * 32])
    with serving(witness.wsgi_app(enrolled)) as base:
        with pytest.raises(WitnessError, match="403"):
            witness.send_head(rig.home, url_for(base, rig))


def test_malformed_requests_are_refused(rig: Rig, ledger: witness.WitnessLedger) -> None:
    with serving(witness.wsgi_app(ledger)) as base:
        url = url_for(base, rig)
        request = witness.head_request(rig.home) or {}
        for body in (b"not json", b"{}", canonical_json({**request, "extra": 1}), b"x" * (witness.MAX_REQUEST + 1),
                     canonical_json({**request, "head": {"index": -1, "hash": "00" * 32}})):  # fmt: skip
            status, _ = _post(url, body)
            assert status in (400, 413)
        assert witness._exchange(f"{base}/elsewhere", "GET", None, ca_file=None, timeout=5, deadline=5)[0] == 404


def test_a_receipt_from_an_unpinned_key_is_refused(rig: Rig, tmp_path: Path) -> None:
    impostor = witness.WitnessLedger(tmp_path / "l3", nacl.signing.SigningKey.generate())
    with serving(witness.wsgi_app(impostor)) as base:
        with pytest.raises(WitnessError, match="not pinned"):
            witness.send_head(rig.home, url_for(base, rig))


def test_a_witness_that_never_answers_is_abandoned(rig: Rig) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(WitnessError, match="did not answer in time|deadline"):
            witness.send_head(rig.home, f"http://127.0.0.1:{port}/witness/{'0' * 32}", timeout=30, deadline=1.5)
        assert time.monotonic() - started < 5
    finally:
        listener.close()


def test_nothing_to_send_before_the_first_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)
    fresh = make_rig(tmp_path)
    assert witness.head_request(fresh.home) is None
    assert witness.send_head(fresh.home, "http://127.0.0.1:9/witness/x") is None


def test_the_nightly_pull_sends_the_head_and_verify_uses_the_witness(rig: Rig, ledger: witness.WitnessLedger) -> None:
    snapshot = rig.make(2).read_bytes()
    app = witness.wsgi_app(ledger)

    def site(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/cabinet/snapshot.snap":
            start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                      ("Content-Length", str(len(snapshot)))])  # fmt: skip
            return [snapshot]
        return app(environ, start_response)

    runner = CliRunner()
    with serving(site) as base:
        source = f"{base}/cabinet/snapshot.snap"
        result = runner.invoke(cli, ["pull", "--home", str(rig.home), source], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "journal head witnessed by the publisher" in result.stdout
        verified = runner.invoke(cli, ["journal", "verify", "--home", str(rig.home), "--witness", source])
        assert verified.exit_code == 0, verified.output
        assert "Témoin de l'éditeur" in verified.stdout
        truncate_carefully(rig, keep=5)
        broken = runner.invoke(cli, ["journal", "verify", "--home", str(rig.home), "--witness", source])
        assert broken.exit_code == 11 and "témoin" in broken.stdout
        # the next pull: the snapshot is unchanged, the witness refuses the shorter journal: an alarm
        again = runner.invoke(cli, ["pull", "--home", str(rig.home), source])
        assert again.exit_code == WitnessError.exit_code
        assert "ALERTE" in again.stderr
    receipt_file = rig.home / witness.WITNESS_DIR / witness.RECEIPT_FILE
    from_file = runner.invoke(cli, ["journal", "verify", "--home", str(rig.home), "--witness", str(receipt_file)])
    assert from_file.exit_code == 11


def test_the_witness_goes_through_the_pull_proxy(rig: Rig, ledger: witness.WitnessLedger,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A practice that reaches the publisher only through its proxy: the head reaches the witness the same way."""
    with serving(witness.wsgi_app(ledger)) as base, proxying() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url())
        url = witness.witness_url(f"{base}/cabinet/snapshot.snap", bytes(keys.appliance_verify_key(rig.home)).hex())
        assert url is not None
        sent = witness.send_head(rig.home, url)
        assert sent is not None and not sent.unchanged
        assert [(method, target) for method, target, _ in proxy.seen] == [("POST", url)]
