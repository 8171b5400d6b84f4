"""The committed reference fixtures: a missing one fails the run instead of skipping tests."""

from __future__ import annotations

from pathlib import Path

import conftest
import pytest


def test_a_missing_fixture_file_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(conftest, "REFERENCE", tmp_path / "metafor_reference.json")
    with pytest.raises(conftest.MissingFixtureError, match="is missing"):
        conftest.reference_cases("rma")


def test_a_kind_without_cases_raises() -> None:
    with pytest.raises(conftest.MissingFixtureError, match="no case of kind"):
        conftest.reference_cases("no-such-kind")


@pytest.mark.parametrize("kind", ["rma", "mh", "peto", "metareg", "subgroup", "escalc",
                                  "egger", "trimfill", "leave1out"])
def test_every_kind_the_suite_uses_has_cases(kind: str) -> None:
    assert conftest.reference_cases(kind)
