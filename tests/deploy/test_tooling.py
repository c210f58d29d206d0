"""A missing tool fails under CI and skips elsewhere (never passes silently)."""

from __future__ import annotations

import pytest

from tests.deploy.tooling import tool


def test_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI needs no-such-tool-jembatan"):
        tool("no-such-tool-jembatan")


def test_missing_tool_skips_loudly_elsewhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        tool("no-such-tool-jembatan")
    assert "!!! SKIPPING: no-such-tool-jembatan is not installed" in capsys.readouterr().err
