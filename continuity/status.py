"""Appliance status for cron mail and monitoring: current snapshot, its age, last pull, plugin exit codes.

Exit codes follow the monitoring-plugin convention (Nagios, Icinga, Zabbix, Centreon): 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN, and the first line of the output is the plugin line. No secret is
needed and nothing is written: the state, alarm and quarantine are only read (a damaged state file is
rebuilt in memory and reported; the next pull writes it). Every string that came from outside (file
names, HTTP reasons, error details) is printed through `safe_text.printable`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from continuity import envelope, files, keys
from continuity.import_summary import ImportSummary, SummaryError
from continuity.safe_text import printable
from continuity.store import QUARANTINE, STATE_FILE, Store, StoreConfig, patient_count, utcnow

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
LABELS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
DEFAULT_WARN_AGE = dt.timedelta(hours=36)
DEFAULT_CRIT_AGE = dt.timedelta(days=7)
# Free space in the home under which `status` warns: the next pull needs room for a snapshot file as
# large as the current one (staging) and the journal must keep growing. Twice the current snapshot,
# and never less than this floor.
MIN_FREE_FLOOR = 64 * 1024 * 1024
MAX_SHOWN = 300  # characters of any one outside string on the status lines


@dataclass
class StatusReport:
    code: int
    problems: list[str] = field(default_factory=list)
    current: dict[str, Any] | None = None
    age_seconds: int | None = None
    last_attempt: dict[str, Any] | None = None
    last_accepted_at: str | None = None
    stored: list[str] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    alarm: dict[str, Any] | None = None
    free_bytes: int | None = None
    min_free_bytes: int | None = None
    warn_age: dt.timedelta = DEFAULT_WARN_AGE
    crit_age: dt.timedelta = DEFAULT_CRIT_AGE

    @property
    def label(self) -> str:
        return LABELS[self.code]

    def raise_to(self, code: int, problem: str) -> None:
        """Add a problem; the report takes the worst code, UNKNOWN staying UNKNOWN."""
        self.code = UNKNOWN if UNKNOWN in (self.code, code) else max(self.code, code)
        self.problems.append(printable(problem, 2 * MAX_SHOWN))

    def headline(self) -> str:
        if self.current is None and self.code == UNKNOWN:
            what = "status unknown"
        elif self.current is None:
            what = "no snapshot"
        else:
            current = self.current
            what = (
                f"snapshot #{printable(current.get('sequence'), 24)} from {printable(current.get('created_at'), 24)}, "
                f"age {human_age(self.age_seconds)}"
            )
        detail = f" - {'; '.join(self.problems)}" if self.problems else ""
        perf = []
        if self.age_seconds is not None:
            perf.append(
                f"age={self.age_seconds}s;{int(self.warn_age.total_seconds())};{int(self.crit_age.total_seconds())};0"
            )
        if self.free_bytes is not None:
            perf.append(f"free={self.free_bytes}B;{self.min_free_bytes or 0};;0")
        tail = f" | {' '.join(perf)}" if perf else ""
        # One line whatever happened: a plugin's first line is all a monitoring agent reads.
        return printable(f"CONTINUITY {self.label} - {what}{detail}", 4000) + tail

    def lines(self) -> list[str]:
        lines = [self.headline()]
        if self.code == UNKNOWN and self.current is None:
            return lines  # nothing was established: details would only mislead
        if self.current is not None:
            current = self.current
            counts = current.get("counts") or {}
            accepted = f"{_shown(current.get('accepted_at'))}"
            if current.get("accepted_by"):
                accepted += f" (accepted from quarantine by {_shown(current.get('accepted_by'))})"
            lines += [
                f"  practice      {_shown(current.get('practice_id'))}",
                f"  sequence      {_shown(current.get('sequence'))}",
                f"  created_at    {_shown(current.get('created_at'))}  (age {human_age(self.age_seconds)})",
                f"  expires_at    {_shown(current.get('expires_at'))}",
                f"  publisher     {_shown(current.get('publisher_fingerprint'))}",
                "  counts        " + _shown(", ".join(f"{k}={v}" for k, v in sorted(counts.items()))),
                f"  accepted_at   {accepted}",
            ]
            lines += [f"  export        {_shown(note)}" for note in export_notes(current)]
        lines.append(f"  stored        {len(self.stored)} file(s)")
        for name in self.pinned:
            lines.append(f"  kept          {name} (in use when a quarantine began; kept until one of its size returns)")
        for waiting in self.quarantined:
            lines.append(
                f"  quarantined   #{waiting['sequence']} from {_shown(waiting.get('created_at'))}: "
                f"{_shown(waiting.get('patients'))} patients (accept: continuity accept {waiting['sequence']})"
            )
        if self.alarm is not None:
            lines.append(
                f"  alarm         {_shown(self.alarm.get('reason'))} at {_shown(self.alarm.get('at'))}: "
                f"{_shown(self.alarm.get('detail'))}"
            )
        if self.last_attempt is not None:
            attempt = self.last_attempt
            outcome = _shown(attempt.get("outcome"))
            if attempt.get("outcome") in ("rejected", "error", "quarantined"):
                outcome = f"{outcome} ({_shown(attempt.get('reason'))}): {_shown(attempt.get('detail'))}"
            lines.append(f"  last pull     {_shown(attempt.get('at'))} from {_shown(attempt.get('source'))}: {outcome}")
        else:
            lines.append("  last pull     never")
        if self.free_bytes is not None:
            threshold = human_bytes(self.min_free_bytes)
            lines.append(f"  free space    {human_bytes(self.free_bytes)} (warning under {threshold})")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.label,
            "code": self.code,
            "problems": self.problems,
            "current": self.current,
            "age_seconds": self.age_seconds,
            "last_attempt": self.last_attempt,
            "last_accepted_at": self.last_accepted_at,
            "stored": self.stored,
            "pinned": self.pinned,
            "quarantined": self.quarantined,
            "alarm": self.alarm,
            "free_bytes": self.free_bytes,
            "min_free_bytes": self.min_free_bytes,
            "warn_age_seconds": int(self.warn_age.total_seconds()),
            "crit_age_seconds": int(self.crit_age.total_seconds()),
        }


def _shown(value: object) -> str:
    return printable(value, MAX_SHOWN)


def export_notes(current: dict[str, Any]) -> list[str]:
    """What the publisher's import report said of the current snapshot, in French ("3 traitements au
    statut inconnu"); nothing for a snapshot that carries no summary (format 1)."""
    try:
        return ImportSummary.from_header(current.get("import") or {}).lines_fr()
    except SummaryError:
        return []


def human_age(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 0:
        return f"{human_age(-seconds)} in the future"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m"


def human_bytes(count: int | None) -> str:
    if count is None:
        return "unknown"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def unknown(
    problem: str, *, warn_age: dt.timedelta = DEFAULT_WARN_AGE, crit_age: dt.timedelta = DEFAULT_CRIT_AGE
) -> StatusReport:
    """The report for a status that could not be established at all."""
    report = StatusReport(code=UNKNOWN, warn_age=warn_age, crit_age=crit_age)
    report.problems.append(printable(problem, 2 * MAX_SHOWN))
    return report


def compute_status(
    home: Path,
    *,
    now: dt.datetime | None = None,
    warn_age: dt.timedelta = DEFAULT_WARN_AGE,
    crit_age: dt.timedelta = DEFAULT_CRIT_AGE,
    min_free: int | None = None,
) -> StatusReport:
    """Read the home and classify it. Never raises: whatever goes wrong is UNKNOWN, with the reason."""
    try:
        return _compute(home, now or utcnow(), warn_age, crit_age, min_free)
    except Exception as error:  # noqa: BLE001 - a monitoring plugin answers UNKNOWN, never a traceback
        return unknown(f"cannot read {home}: {type(error).__name__}: {error}", warn_age=warn_age, crit_age=crit_age)


def _compute(
    home: Path, now: dt.datetime, warn_age: dt.timedelta, crit_age: dt.timedelta, min_free: int | None
) -> StatusReport:
    report = StatusReport(code=OK, warn_age=warn_age, crit_age=crit_age)
    if not (home / keys.APPLIANCE_PUB).is_file():
        return unknown(f"{home} is not initialised (run `continuity init`)", warn_age=warn_age, crit_age=crit_age)
    store = Store(home)
    config = StoreConfig.load(home)
    state = store.read_state()
    report.stored = [path.name for path in store.snapshot_files()]
    report.pinned = [path.name for path in store.pinned_files()]

    rebuilt = state.get("rebuilt")
    if isinstance(rebuilt, dict):
        report.raise_to(
            WARNING,
            f"{STATE_FILE} was rebuilt at {rebuilt.get('at')} because it {_why(rebuilt.get('why'))}: "
            "the pull history before that is lost",
        )

    attempts = [a for a in state.get("attempts", []) if isinstance(a, dict)]
    report.last_attempt = _clean(attempts[0]) if attempts else None
    accepted = next((a for a in attempts if a.get("outcome") == "accepted"), None)
    report.last_accepted_at = printable(accepted.get("at"), 40) if accepted else None

    current = state.get("current")
    if not isinstance(current, dict):
        report.raise_to(CRITICAL, "no snapshot has been accepted yet")
    else:
        report.current = _clean(current)
        created = envelope.parse_time(current.get("created_at"), "created_at")
        expires = envelope.parse_time(current.get("expires_at"), "expires_at")
        age = now - created
        report.age_seconds = int(age.total_seconds())
        old = human_age(report.age_seconds)
        if created > now + dt.timedelta(seconds=config.clock_skew_seconds):
            # The publisher cannot have made it yet: this appliance's clock is behind (set back, dead
            # battery) and every age and expiry computed here is wrong.
            report.raise_to(
                CRITICAL,
                f"the current snapshot was created {human_age(-report.age_seconds)} ahead of this appliance's "
                "clock: the clock is wrong (set back?), check the date and time",
            )
        elif age >= crit_age:
            report.raise_to(CRITICAL, f"data is {old} old (critical at {human_age(int(crit_age.total_seconds()))})")
        elif age >= warn_age:
            report.raise_to(WARNING, f"data is {old} old (warning at {human_age(int(warn_age.total_seconds()))})")
        if now >= expires:
            report.raise_to(WARNING, f"current snapshot expired at {current.get('expires_at')}")

    # An alarm stays up until a snapshot is accepted, even if the state file was lost meanwhile.
    alarm = store.read_alarm()
    if alarm is not None:
        report.alarm = alarm
        report.raise_to(CRITICAL, f"{alarm.get('reason')} at {alarm.get('at')}: {alarm.get('detail')}")

    _quarantine(store, report, current)

    last = report.last_attempt
    if last is not None and last.get("outcome") in ("rejected", "error"):
        reason = last.get("reason")
        if alarm is None or reason != alarm.get("reason"):
            report.raise_to(WARNING, f"last pull {last.get('outcome')} ({reason}): {last.get('detail')}")

    _free_space(home, report, current, min_free)
    # Security side (issue 13): the journal's disk reserve in use (the disk is full), a key rotation the
    # publisher has not followed yet (continuity/journal.py, continuity/rotation.py).
    from continuity import journal, rotation

    reserve = journal.reserve_problem(home)
    if reserve:
        report.raise_to(CRITICAL, reserve)
    waiting = rotation.status_problem(home)
    if waiting:
        report.raise_to(WARNING, waiting)
    return report


def _quarantine(store: Store, report: StatusReport, current: object) -> None:
    current_sequence = current.get("sequence") if isinstance(current, dict) else None
    before = patient_count(current.get("counts")) if isinstance(current, dict) else None
    for entry in store.quarantine():
        if isinstance(current_sequence, int) and entry.sequence <= current_sequence:
            continue  # left over: a newer snapshot is current, it can never be used
        if entry.header is None:
            report.raise_to(WARNING, f"{QUARANTINE}/{entry.path.name} no longer verifies: {entry.problem}")
            continue
        patients = entry.patients
        report.quarantined.append(
            {
                "sequence": entry.sequence,
                "created_at": envelope.format_time(entry.header.created_at),
                "patients": patients,
                "current_patients": before,
            }
        )
        against = f" against {before} in the current snapshot" if before is not None else ""
        action = "never usable" if patients == 0 else f"`continuity accept {entry.sequence}` to use it"
        report.raise_to(
            WARNING,
            f"snapshot #{entry.sequence} quarantined: {patients} patients{against} ({action})",
        )


def _free_space(home: Path, report: StatusReport, current: object, min_free: int | None) -> None:
    size = current.get("size") if isinstance(current, dict) else None
    threshold = min_free if min_free is not None else max(MIN_FREE_FLOOR, 2 * size if isinstance(size, int) else 0)
    report.min_free_bytes = threshold
    try:
        report.free_bytes = files.free_bytes(home)
    except OSError as error:
        report.raise_to(WARNING, f"cannot measure the free space in {home}: {error.strerror}")
        return
    if report.free_bytes < threshold:
        report.raise_to(
            WARNING,
            f"only {human_bytes(report.free_bytes)} free in {home} (warning under {human_bytes(threshold)}): "
            "the next pull or the journal may fail, free some space",
        )


def _why(value: object) -> str:
    text = printable(value, MAX_SHOWN)
    return text.removeprefix(f"{STATE_FILE} ")


def _clean(entry: dict[str, Any]) -> dict[str, Any]:
    """A copy safe to print: strings made printable and bounded (nested counts included)."""
    cleaned: dict[str, Any] = {}
    for key, value in list(entry.items())[:40]:
        name = printable(key, 40)
        if isinstance(value, str):
            cleaned[name] = printable(value, MAX_SHOWN)
        elif isinstance(value, dict):
            cleaned[name] = {
                printable(k, 64): printable(v, MAX_SHOWN) if isinstance(v, str) else v
                for k, v in list(value.items())[:40]
                if isinstance(v, int | str)
            }
        elif value is None or isinstance(value, int | float | bool):
            cleaned[name] = value
    return cleaned
