"""Appliance status for cron mail and monitoring: current snapshot, its age, last pull, plugin exit codes.

Exit codes follow the monitoring-plugin convention (Nagios, Icinga, Zabbix, Centreon): 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN. No secret is needed: only the state file is read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from continuity import envelope, keys
from continuity.errors import ContinuityError
from continuity.import_summary import ImportSummary, SummaryError
from continuity.store import Store, utcnow

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
LABELS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
DEFAULT_WARN_AGE = dt.timedelta(hours=36)
DEFAULT_CRIT_AGE = dt.timedelta(days=7)
# Rejections that need a person now, whatever the age of the data: someone may be attacking the feed.
ALARM_REASONS = frozenset({"equivocation", "untrusted_signer"})


@dataclass
class StatusReport:
    code: int
    problems: list[str] = field(default_factory=list)
    current: dict[str, Any] | None = None
    age_seconds: int | None = None
    last_attempt: dict[str, Any] | None = None
    last_accepted_at: str | None = None
    stored: list[str] = field(default_factory=list)
    warn_age: dt.timedelta = DEFAULT_WARN_AGE
    crit_age: dt.timedelta = DEFAULT_CRIT_AGE

    @property
    def label(self) -> str:
        return LABELS[self.code]

    def headline(self) -> str:
        if self.current is None:
            what = "no snapshot"
        else:
            current = self.current
            what = f"snapshot #{current['sequence']} from {current['created_at']}, age {human_age(self.age_seconds)}"
        detail = f" - {'; '.join(self.problems)}" if self.problems else ""
        perf = ""
        if self.age_seconds is not None:
            perf = (
                f" | age={self.age_seconds}s;{int(self.warn_age.total_seconds())};"
                f"{int(self.crit_age.total_seconds())};0"
            )
        return f"CONTINUITY {self.label} - {what}{detail}{perf}"

    def lines(self) -> list[str]:
        lines = [self.headline()]
        if self.current is not None:
            current = self.current
            lines.append(f"  practice      {current.get('practice_id')}")
            lines.append(f"  sequence      {current.get('sequence')}")
            lines.append(f"  created_at    {current.get('created_at')}  (age {human_age(self.age_seconds)})")
            lines.append(f"  expires_at    {current.get('expires_at')}")
            lines.append(f"  publisher     {current.get('publisher_fingerprint')}")
            counts = current.get("counts") or {}
            lines.append("  counts        " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
            lines += [f"  export        {note}" for note in export_notes(current)]
            lines.append(f"  accepted_at   {current.get('accepted_at')}")
        lines.append(f"  stored        {len(self.stored)} file(s)")
        if self.last_attempt is not None:
            attempt = self.last_attempt
            outcome = attempt.get("outcome")
            if outcome == "rejected":
                outcome = f"rejected ({attempt.get('reason')}): {attempt.get('detail')}"
            lines.append(f"  last pull     {attempt.get('at')} from {attempt.get('source')}: {outcome}")
        else:
            lines.append("  last pull     never")
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
            "warn_age_seconds": int(self.warn_age.total_seconds()),
            "crit_age_seconds": int(self.crit_age.total_seconds()),
        }


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
        return f"{-seconds}s in the future"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m"


def compute_status(
    home: Path,
    *,
    now: dt.datetime | None = None,
    warn_age: dt.timedelta = DEFAULT_WARN_AGE,
    crit_age: dt.timedelta = DEFAULT_CRIT_AGE,
) -> StatusReport:
    """Read the state and classify it. Never raises for a broken home: that is UNKNOWN."""
    now = now or utcnow()
    report = StatusReport(code=OK, warn_age=warn_age, crit_age=crit_age)
    store = Store(home)
    if not (home / keys.APPLIANCE_PUB).is_file():
        report.code = UNKNOWN
        report.problems.append(f"{home} is not initialised (run `continuity init`)")
        return report
    try:
        state = store.read_state()
        report.stored = [path.name for path in store.snapshot_files()]
    except (ContinuityError, OSError) as error:
        report.code = UNKNOWN
        report.problems.append(f"state unreadable: {error}")
        return report

    def raise_to(code: int, problem: str) -> None:
        report.code = max(report.code, code) if report.code != UNKNOWN else UNKNOWN
        report.problems.append(problem)

    attempts = [a for a in state.get("attempts", []) if isinstance(a, dict)]
    report.last_attempt = attempts[0] if attempts else None
    accepted = next((a for a in attempts if a.get("outcome") == "accepted"), None)
    report.last_accepted_at = accepted.get("at") if accepted else None
    current = state.get("current")
    if not isinstance(current, dict):
        raise_to(CRITICAL, "no snapshot has been accepted yet")
    else:
        report.current = current
        try:
            created = envelope.parse_time(current.get("created_at"), "created_at")
            expires = envelope.parse_time(current.get("expires_at"), "expires_at")
        except ContinuityError as error:
            report.code = UNKNOWN
            report.problems.append(f"state has a bad date: {error}")
            return report
        age = now - created
        report.age_seconds = int(age.total_seconds())
        old = human_age(report.age_seconds)
        if age >= crit_age:
            raise_to(CRITICAL, f"data is {old} old (critical at {human_age(int(crit_age.total_seconds()))})")
        elif age >= warn_age:
            raise_to(WARNING, f"data is {old} old (warning at {human_age(int(warn_age.total_seconds()))})")
        if now >= expires:
            raise_to(WARNING, f"current snapshot expired at {current.get('expires_at')}")
    # Alarms since the last accepted file stay up until a good file arrives.
    for attempt in attempts:
        if attempt.get("outcome") == "accepted":
            break
        if attempt.get("reason") in ALARM_REASONS:
            raise_to(CRITICAL, f"{attempt.get('reason')} at {attempt.get('at')}: {attempt.get('detail')}")
            break
    if report.last_attempt is not None and report.last_attempt.get("outcome") in ("rejected", "error"):
        reason = report.last_attempt.get("reason")
        if reason not in ALARM_REASONS:
            raise_to(WARNING, f"last pull {report.last_attempt.get('outcome')} ({reason})")
    return report
