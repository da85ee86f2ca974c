"""The journal witness: each nightly pull hands the journal's head to the publisher, who keeps it.

A journal on the appliance can be cut, rewritten or deleted by someone with the disk; what the
publisher has already seen cannot. So after each pull from an http(s) server, the appliance POSTs to
the same server the head signed at the last checkpoint (appliance key) and the head as it is now
(unsigned: the nightly job holds no secret). The publisher's witness checks it, refuses a head that
goes backwards or forks, keeps every head it accepted, and answers with a **receipt** countersigned by
the publisher key. `journal verify --witness URL|FILE` then checks that the local journal still
contains the last witnessed head. Request, receipt and answers: docs/snapshot-format.md §11.

Appliance side: `head_request`, `send_head`, `fetch_receipt`, `read_receipt`, `witnessed_head`.
Publisher side: `WitnessLedger` (a directory, one sub-directory per appliance key) and `wsgi_app`.
No patient data travels: counts, hashes, keys, the staff roster's version.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing

from continuity import files, journal, strict_json
from continuity.errors import ContinuityError, JournalError, TooLarge, WitnessError

log = logging.getLogger(__name__)

REQUEST_PURPOSE = "continuity-journal-witness-request-v1"
RECEIPT_PURPOSE = "continuity-journal-witness-receipt-v1"
ROTATION_PURPOSE = "continuity-appliance-key-rotation-v1"
MAX_REQUEST = 16 * 1024
MAX_RECEIPT = 16 * 1024
RECEIPT_FILE = "receipt.json"  # in HOME/witness/ on the appliance; in each appliance's folder on the publisher
HEADS_FILE = "heads.jsonl"
WITNESS_DIR = "witness"
_KEY_ID = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
USER_AGENT = "continuity-appliance/1"


def appliance_key_id(verify_key_hex: str) -> str:
    """The ledger name of an appliance: the key id (§6) of its Ed25519 appliance key, 32 hex digits."""
    return hashlib.sha256(bytes.fromhex(verify_key_hex)).digest()[:16].hex()


# --- the request (appliance side) ------------------------------------------------------------------


def head_request(home: Path, *, now: dt.datetime | None = None) -> dict[str, Any] | None:
    """The witness request for this appliance's journal as it is, or None before the first checkpoint.

    Built without any secret: the newest checkpoint carries the appliance key's signature, the
    current head is reported as it is (the publisher records it as unsigned).
    """
    book = journal.Journal(home, appliance_public_key=None)
    checkpoint = book.last_checkpoint()
    head = book.head()
    if checkpoint is None or head is None:
        return None
    fields = ("count", "head", "generation", "key", "next", "appliance_key", "signature", "appliance_signature")
    signed = {name: checkpoint.details.get(name) for name in fields}
    request: dict[str, Any] = {
        "purpose": REQUEST_PURPOSE,
        "appliance_key": signed["appliance_key"],
        "checkpoint": signed,
        "head": {"index": head.index, "hash": head.hash},
        "roster": _roster_version(home),
        "sent_at": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
    }
    rotation = _rotation_statement(home)
    if rotation is not None:
        request["rotation"] = rotation
    return request


def _roster_version(home: Path) -> dict[str, Any] | None:
    from continuity import keys

    try:
        roster = keys.read_roster(home)
    except ContinuityError:
        return None
    return {"serial": roster.serial, "digest": roster.digest, "admin_key": keys.fingerprint(roster.admin_key)}


def _rotation_statement(home: Path) -> dict[str, Any] | None:
    """After an appliance key rotation, the old key's word that the new one continues its journal."""
    path = home / WITNESS_DIR / "rotation.json"
    try:
        value = json.loads(path.read_bytes()[:4096])
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def rotation_statement(old_key: nacl.signing.SigningKey, new_key: nacl.signing.VerifyKey) -> dict[str, Any]:
    """Signed by the old appliance key at rotation, sent with the next heads (the new ledger continues the old)."""
    content = {"purpose": ROTATION_PURPOSE, "old_key": bytes(old_key.verify_key).hex(), "new_key": bytes(new_key).hex()}
    return {**content, "signature": old_key.sign(journal.canonical_json(content)).signature.hex()}


def witness_url(source: str, appliance_key_hex: str) -> str | None:
    """Where the heads of this appliance go, next to an http(s) pull source; None for a file source.

    `https://host/cabinet/snapshot.snap` gives `https://host/cabinet/witness/<key id>`.
    """
    parsed = urllib.parse.urlsplit(source)
    if parsed.scheme not in ("http", "https"):
        return None
    path = parsed.path.rsplit("/", 1)[0] + "/witness/" + appliance_key_id(appliance_key_hex)
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path, "", ""))


def resolve_url(url: str, home: Path) -> str:
    """A witness URL as given to `journal verify --witness`: the witness address, or the pull source."""
    if "/witness/" in urllib.parse.urlsplit(url).path:
        return url
    key = journal.read_verify_key(home)
    if key is None:
        raise WitnessError("no appliance key", message_fr="Clé du poste absente : impossible de trouver son témoin.")
    found = witness_url(url, bytes(key).hex())
    if found is None:
        raise WitnessError(f"not an http(s) URL: {url}", message_fr="Adresse du témoin invalide (http:// ou https://).")
    return found


# --- talking to the witness (appliance side) --------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    url: str
    receipt: dict[str, Any]
    unchanged: bool


def _exchange(
    url: str, method: str, body: bytes | None, *, ca_file: Path | None, timeout: float, deadline: float
) -> tuple[int, bytes]:
    """One request under the pull's transport rules (continuity/pull.py: verified TLS or the pinned CA,
    the environment's proxy, netrc credentials for their own host, connect/read timeouts), bounded in
    time as a whole: a witness that drips its answer is abandoned."""
    from continuity import pull
    from continuity.errors import TransportError

    options = pull.PullOptions(connect_timeout=timeout, read_timeout=timeout, deadline=deadline, ca_file=ca_file)
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        with pull.HttpClient(options, pull.Deadline(deadline)).request(method, url, headers, body) as exchange:
            reader = pull.bounded_body(exchange, MAX_RECEIPT)
            chunks: list[bytes] = []
            while chunk := reader.read():
                chunks.append(chunk)
            return int(exchange.response.status), b"".join(chunks)
    except TooLarge as error:
        raise WitnessError(f"{_display(url)}: answer larger than {MAX_RECEIPT} bytes") from error
    except (pull.Retryable, TransportError) as error:
        unreachable = "Le témoin de l'éditeur est injoignable ou ne répond pas à temps."
        raise WitnessError(f"{_display(url)}: {error}", message_fr=unreachable) from error


def send_head(
    home: Path,
    url: str,
    *,
    ca_file: Path | None = None,
    timeout: float = 10.0,
    deadline: float = 30.0,
    now: dt.datetime | None = None,
) -> SendResult | None:
    """Send this appliance's journal head to the witness at `url`; keep and journal the receipt.

    Returns None when there is nothing signed to send yet (no session has unlocked). Raises
    WitnessError (journaled as `witness_failed`) when the witness refuses or cannot be reached: the
    pull itself is not affected.
    """
    request = head_request(home, now=now)
    if request is None:
        log.info("journal witness: no checkpoint yet, nothing to send")
        return None
    book = journal.Journal(home)
    try:
        status, data = _exchange(url, "POST", journal.canonical_json(request), ca_file=ca_file, timeout=timeout,
                                 deadline=deadline)  # fmt: skip
        if status != 200:
            raise WitnessError(
                f"{url}: witness answered {status}: {_reason(data)}",
                message_fr=_refusal_fr(status),
                refused=status in (403, 409),
            )
        receipt = parse_receipt(data, trusted_keys(home))
        expected = request["checkpoint"]
        if (receipt["checkpoint"]["count"], receipt["checkpoint"]["head"]) != (expected["count"], expected["head"]) or (
            receipt["head"] != request["head"] and receipt["head"]["index"] < request["head"]["index"]
        ):
            raise WitnessError(f"{url}: the receipt is not for the head sent")
    except WitnessError as error:
        with contextlib.suppress(JournalError, ValueError):
            book.append(user=journal.SYSTEM_USER, action=journal.Action.WITNESS_FAILED,
                        details={"url": _display(url), "reason": str(error)[:300]})  # fmt: skip
        raise
    previous = read_receipt(home / WITNESS_DIR / RECEIPT_FILE, trusted_keys(home), missing_ok=True)
    unchanged = previous is not None and previous.get("number") == receipt["number"]
    store_receipt(home, data)
    if not unchanged:
        book.append(user=journal.SYSTEM_USER, action=journal.Action.WITNESS_SENT, details={
            "url": _display(url), "count": receipt["checkpoint"]["count"], "index": receipt["head"]["index"],
            "receipt": receipt["number"],
        })  # fmt: skip
    return SendResult(url, receipt, unchanged)


def _refusal_fr(status: int) -> str:
    if status == 409:
        return ("ALERTE : le témoin de l'éditeur refuse la fin du journal de ce poste : elle est plus ancienne "
                "ou différente de celle qu'il a déjà vue (journal tronqué ou réécrit ?). Lancez "
                "« continuity journal verify --witness ».")  # fmt: skip
    if status == 403:
        return "Le témoin de l'éditeur ne reconnaît pas ce poste (clé non enregistrée chez l'éditeur)."
    return "Le témoin de l'éditeur n'a pas enregistré la fin du journal."


def _reason(data: bytes) -> str:
    try:
        value = json.loads(data[:2048])
        return str(value.get("error", ""))[:200] if isinstance(value, dict) else ""
    except ValueError:
        return repr(data[:80])


def _display(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    if parsed.port:
        host = f"{host}:{parsed.port}"
    return urllib.parse.urlunsplit((parsed.scheme, host, parsed.path, "", ""))


def fetch_receipt(url: str, home: Path, *, ca_file: Path | None = None, deadline: float = 30.0) -> dict[str, Any]:
    """The last receipt the witness issued for this appliance (GET), checked against the pinned keys."""
    status, data = _exchange(url, "GET", None, ca_file=ca_file, timeout=10.0, deadline=deadline)
    if status == 404:
        raise WitnessError(
            f"{url}: the witness has no head for this appliance",
            message_fr="Le témoin de l'éditeur n'a encore reçu aucune fin de journal de ce poste.",
        )
    if status != 200:
        raise WitnessError(f"{url}: witness answered {status}: {_reason(data)}")
    return parse_receipt(data, trusted_keys(home))


def trusted_keys(home: Path) -> list[nacl.signing.VerifyKey]:
    from continuity import keys

    return keys.trusted_publishers(home)


def store_receipt(home: Path, data: bytes) -> None:
    directory = home / WITNESS_DIR
    directory.mkdir(mode=0o700, exist_ok=True)
    files.write_atomic(directory / RECEIPT_FILE, data, 0o600)


def read_receipt(
    path: Path, pinned: Iterable[nacl.signing.VerifyKey], *, missing_ok: bool = False
) -> dict[str, Any] | None:
    try:
        data = path.read_bytes()[: MAX_RECEIPT + 1]
    except FileNotFoundError:
        if missing_ok:
            return None
        raise WitnessError(f"{path}: no such receipt", message_fr=f"Reçu du témoin introuvable : {path}") from None
    except OSError as error:
        raise WitnessError(f"{path}: {error}") from error
    return parse_receipt(data, pinned)


def parse_receipt(data: bytes, pinned: Iterable[nacl.signing.VerifyKey]) -> dict[str, Any]:
    """A receipt, checked: shape, and the signature of a pinned publisher key."""
    try:
        receipt = json.loads(data.decode("utf-8"), object_pairs_hook=strict_json.object_without_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise WitnessError(f"receipt is not JSON ({error})", message_fr="Le reçu du témoin est illisible.") from error
    expected = {"purpose", "appliance_key", "number", "received_at", "checkpoint", "head", "roster", "publisher_key",
                "signature"}  # fmt: skip
    if not isinstance(receipt, dict) or set(receipt) != expected or receipt["purpose"] != RECEIPT_PURPOSE:
        raise WitnessError("not a witness receipt", message_fr="Ce fichier n'est pas un reçu du témoin.")
    publisher = {bytes(key).hex(): key for key in pinned}
    key = publisher.get(str(receipt["publisher_key"]))
    if key is None:
        raise WitnessError("receipt signed by a publisher key that is not pinned",
                           message_fr="Le reçu du témoin n'est pas signé par l'éditeur de confiance.")  # fmt: skip
    content = {name: value for name, value in receipt.items() if name != "signature"}
    try:
        key.verify(journal.canonical_json(content), bytes.fromhex(str(receipt["signature"])))
    except (ValueError, nacl.exceptions.BadSignatureError) as error:
        raise WitnessError("receipt signature does not verify",
                           message_fr="Le reçu du témoin a été modifié (signature invalide).") from error  # fmt: skip
    checkpoint, head = receipt["checkpoint"], receipt["head"]
    if not (isinstance(checkpoint, dict) and isinstance(checkpoint.get("count"), int)
            and isinstance(checkpoint.get("head"), str) and isinstance(head, dict)
            and isinstance(head.get("index"), int) and isinstance(head.get("hash"), str)):  # fmt: skip
        raise WitnessError("receipt fields malformed")
    return dict(receipt)


def witnessed_head(receipt: dict[str, Any]) -> journal.WitnessedHead:
    roster = receipt["roster"] if isinstance(receipt.get("roster"), dict) else {}
    return journal.WitnessedHead(
        received_at=str(receipt["received_at"]),
        appliance_key=str(receipt["appliance_key"]),
        signed_count=int(receipt["checkpoint"]["count"]),
        signed_head=str(receipt["checkpoint"]["head"]),
        reported_index=int(receipt["head"]["index"]),
        reported_hash=str(receipt["head"]["hash"]),
        roster_serial=roster.get("serial") if isinstance(roster.get("serial"), int) else None,
        roster_digest=roster.get("digest") if isinstance(roster.get("digest"), str) else None,
    )


# --- the witness (publisher side) -------------------------------------------------------------------


class Refused(Exception):
    """A request the witness does not record, with the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class WitnessLedger:
    """Every head accepted from each appliance, and the last receipt, in a directory of the publisher.

    ```
    DIR/<appliance key id>/heads.jsonl    one line per accepted head: the request and the receipt (append-only)
    DIR/<appliance key id>/receipt.json   the last receipt (what GET answers)
    DIR/<appliance key id>/.lock
    ```
    `allowed` (appliance verify keys, hex) limits the witness to enrolled appliances; None accepts any
    key that signs its own requests.
    """

    def __init__(
        self,
        directory: Path,
        signing_key: nacl.signing.SigningKey,
        *,
        allowed: Iterable[str] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.signing_key = signing_key
        self.allowed = set(allowed) if allowed is not None else None
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def _folder(self, key_id: str) -> Path:
        if not _KEY_ID.fullmatch(key_id):
            raise Refused(404, "not an appliance key id")
        return self.directory / key_id

    @contextlib.contextmanager
    def _locked(self, folder: Path) -> Iterator[None]:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def last_receipt(self, key_id: str) -> bytes | None:
        path = self._folder(key_id) / RECEIPT_FILE
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def record(self, key_id: str, body: bytes, *, remote: str = "") -> bytes:
        """Check and record one request; returns the receipt. Raises Refused(status, reason)."""
        if len(body) > MAX_REQUEST:
            raise Refused(413, "request too large")
        request = _parse_request(body)
        key_hex = request["appliance_key"]
        if appliance_key_id(key_hex) != key_id:
            raise Refused(403, "request signed by another appliance than the one addressed")
        if self.allowed is not None and key_hex not in self.allowed:
            raise Refused(403, "appliance not enrolled with this witness")
        checkpoint, head = request["checkpoint"], request["head"]
        if head["index"] < checkpoint["count"]:
            raise Refused(400, "reported head before the signed checkpoint")
        folder = self._folder(key_id)
        with self._locked(folder):
            last = self.last_receipt(key_id)
            previous = json.loads(last) if last else None
            if previous is not None:
                old_count, old_head = previous["checkpoint"]["count"], previous["checkpoint"]["head"]
                old_index, old_hash = previous["head"]["index"], previous["head"]["hash"]
                if checkpoint["count"] < old_count or head["index"] < old_index:
                    raise Refused(409, f"head going backwards (witnessed: checkpoint {old_count}, entry {old_index})")
                if (checkpoint["count"] == old_count and checkpoint["head"] != old_head) or (
                    head["index"] == old_index and head["hash"] != old_hash
                ):
                    raise Refused(409, "another journal with the same length was witnessed (rewritten journal)")
                if checkpoint["count"] == old_count and head["index"] == old_index:
                    return last  # type: ignore[return-value]  # a replay of the last head: same receipt
            number = (previous["number"] + 1) if previous is not None else 1
            receipt = self._sign({
                "purpose": RECEIPT_PURPOSE, "appliance_key": key_hex, "number": number,
                "received_at": self.clock().isoformat(timespec="seconds"),
                "checkpoint": {"count": checkpoint["count"], "head": checkpoint["head"],
                               "generation": checkpoint["generation"]},
                "head": {"index": head["index"], "hash": head["hash"]},
                "roster": request.get("roster"),
                "publisher_key": bytes(self.signing_key.verify_key).hex(),
            })  # fmt: skip
            line = journal.canonical_json({"request": request, "receipt": json.loads(receipt), "remote": remote})
            fd = os.open(folder / HEADS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            files.write_atomic(folder / RECEIPT_FILE, receipt, 0o644)
            if "rotation" in request:
                self._note_rotation(request["rotation"], key_hex)
            return receipt

    def _note_rotation(self, statement: Any, new_key: str) -> None:
        """The old appliance key's ledger learns which key continues it (read by people, not enforced)."""
        try:
            content = {k: statement[k] for k in ("purpose", "old_key", "new_key")}
            if content["purpose"] != ROTATION_PURPOSE or content["new_key"] != new_key:
                return
            nacl.signing.VerifyKey(bytes.fromhex(content["old_key"])).verify(
                journal.canonical_json(content), bytes.fromhex(statement["signature"])
            )
        except (KeyError, TypeError, ValueError, nacl.exceptions.BadSignatureError):
            log.warning("witness: ignoring a rotation statement that does not verify")
            return
        old = self.directory / appliance_key_id(content["old_key"])
        if old.is_dir():
            files.write_atomic(old / "continued-by", (appliance_key_id(new_key) + "\n").encode(), 0o644)

    def _sign(self, content: dict[str, Any]) -> bytes:
        signature = self.signing_key.sign(journal.canonical_json(content)).signature.hex()
        return journal.canonical_json({**content, "signature": signature}) + b"\n"


def _parse_request(body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body.decode("utf-8"), object_pairs_hook=strict_json.object_without_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Refused(400, f"not JSON ({error})") from error
    allowed = {"purpose", "appliance_key", "checkpoint", "head", "roster", "sent_at", "rotation"}
    required = {"purpose", "appliance_key", "checkpoint", "head"}
    if not isinstance(request, dict) or not required <= set(request) <= allowed:
        raise Refused(400, "unexpected fields")
    if request["purpose"] != REQUEST_PURPOSE:
        raise Refused(400, "not a witness request")
    checkpoint, head = request["checkpoint"], request["head"]
    names = ("count", "head", "generation", "key", "next", "appliance_key", "signature", "appliance_signature")
    if not isinstance(checkpoint, dict) or set(checkpoint) != set(names) or not isinstance(head, dict):
        raise Refused(400, "checkpoint or head malformed")
    count, generation, index = checkpoint["count"], checkpoint["generation"], head.get("index")
    for value in (count, generation, index):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise Refused(400, "counts must be non-negative integers")
    if set(head) != {"index", "hash"} or not _HEX64.fullmatch(str(head["hash"])):
        raise Refused(400, "head malformed")
    if not _HEX64.fullmatch(str(checkpoint["head"])) or not _HEX64.fullmatch(str(request["appliance_key"])):
        raise Refused(400, "hashes and keys are 64 hex digits")
    if checkpoint["appliance_key"] != request["appliance_key"]:
        raise Refused(403, "checkpoint signed by another appliance key than the request names")
    try:
        message = journal.checkpoint_message(
            count, str(checkpoint["head"]), generation,
            nacl.signing.VerifyKey(bytes.fromhex(str(checkpoint["key"]))),
            nacl.signing.VerifyKey(bytes.fromhex(str(checkpoint["next"]))),
            nacl.signing.VerifyKey(bytes.fromhex(str(checkpoint["appliance_key"]))),
        )  # fmt: skip
        nacl.signing.VerifyKey(bytes.fromhex(str(request["appliance_key"]))).verify(
            message, bytes.fromhex(str(checkpoint["appliance_signature"]))
        )
    except (ValueError, TypeError, nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError) as error:
        raise Refused(403, "checkpoint signature does not verify") from error
    return dict(request)


def wsgi_app(ledger: WitnessLedger) -> Callable[..., Iterable[bytes]]:
    """The witness as a WSGI application: `POST …/witness/<id>` records, `GET …/witness/<id>` reads.

    Mount it beside the snapshot files on the publisher's web server (or run `continuity publisher
    witness-serve` behind it). Answers are JSON: the receipt, or `{"error": reason}`.
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        method = str(environ.get("REQUEST_METHOD", "GET"))
        match = re.search(r"/witness/([^/]+)$", path)
        try:
            if match is None:
                raise Refused(404, "no such witness")
            key_id = match.group(1)
            if method == "GET":
                receipt = ledger.last_receipt(key_id) if _KEY_ID.fullmatch(key_id) else None
                if receipt is None:
                    raise Refused(404, "no head witnessed for this appliance")
                return _answer(start_response, 200, receipt)
            if method != "POST":
                raise Refused(405, "GET or POST")
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError as error:
                raise Refused(400, "bad Content-Length") from error
            if length > MAX_REQUEST or length < 0:
                raise Refused(413, "request too large")
            body = environ["wsgi.input"].read(length)
            receipt = ledger.record(key_id, body, remote=str(environ.get("REMOTE_ADDR", "")))
            return _answer(start_response, 200, receipt)
        except Refused as refusal:
            log.warning("witness %s %s: %d %s", method, path, refusal.status, refusal)
            return _answer(start_response, refusal.status, journal.canonical_json({"error": str(refusal)}) + b"\n")

    return app


_STATUS_TEXT = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                409: "Conflict", 413: "Payload Too Large"}  # fmt: skip


def _answer(start_response: Callable[..., Any], status: int, body: bytes) -> list[bytes]:
    start_response(f"{status} {_STATUS_TEXT.get(status, 'Error')}",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])  # fmt: skip
    return [body]
