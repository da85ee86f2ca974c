"""The launchers: `continuity tui` options and `make_app`, without running the app."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from continuity.cli import cli
from continuity.session import PRACTICE_TZ, DatabaseUnlocker, HomeUnlocker
from continuity.tui.app import make_app, parse_today


def test_parse_today_takes_a_day_or_a_moment() -> None:
    assert parse_today("2026-11-28") == dt.datetime(2026, 11, 28, 12, 0, tzinfo=PRACTICE_TZ)
    assert parse_today("2026-11-28T08:30") == dt.datetime(2026, 11, 28, 8, 30, tzinfo=PRACTICE_TZ)
    with pytest.raises(ValueError, match="--today"):
        parse_today("28/11")


def test_make_app_dev_mode_and_home_mode(tmp_path: Path, practice_db: Path) -> None:
    dev = make_app(home=tmp_path / "home", db=practice_db, user="dr.test", idle_minutes=2, today="2026-11-28")
    assert isinstance(dev.unlocker, DatabaseUnlocker) and dev.unlocker.staff() == ["dr.test"]
    assert dev.idle_seconds == 120
    real = make_app(home=tmp_path / "home")
    assert isinstance(real.unlocker, HomeUnlocker)


def test_tui_command_refuses_a_bad_date(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["tui", "--home", str(tmp_path), "--today", "demain"])
    assert result.exit_code == 2
    assert "--today" in result.output
