"""`continuity demo` without a terminal: the whole chain on a fresh synthetic practice."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from continuity import keys
from continuity.cli import cli
from continuity.errors import StoreError


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    # Key derivation at the MODERATE cost takes about a second per unlock; the demo unlocks 3 times.
    monkeypatch.setenv(keys.WEAK_KDF_ENV, "1")


def test_demo_runs_the_chain_and_prints_an_ordonnance(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--no-tui", "--home", str(home), "--patients", "150"])
    assert result.exit_code == 0, result.output
    assert "utilisateur : accueil" in result.stdout
    assert "N'DIAYE" in result.stdout  # the search step found the showcase name
    assert "[ALD]" in result.stdout  # the summary step showed an ALD patient
    pdf = tmp_path / "demo-platform" / "ordonnance-demo.pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "AFFECTION EXONÉRANTE" in text
    # The appliance home holds no plaintext database: only envelopes, keyslots, state and journal.
    assert not list(home.rglob("*.db"))
    assert (home / ".continuity-demo").exists()


def test_demo_refuses_to_overwrite_a_real_home(tmp_path: Path) -> None:
    from continuity import demo

    home = tmp_path / "real"
    home.mkdir()
    (home / "appliance.pub").write_text("a real appliance\n")
    with pytest.raises(StoreError):
        demo.prepare(home, patients=150)
    assert (home / "appliance.pub").read_text() == "a real appliance\n"
