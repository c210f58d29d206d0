"""The image's Dockerfile, read statically (no Docker engine here): multi-stage, a numeric
non-root user, nothing from the build stage but the virtualenv, no compilers installed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from jembatan.config import CommonSettings
from services import SERVICES
from tests.deploy.tooling import ROOT

COMPILERS = re.compile(
    r"\b(build-essential|gcc|g\+\+|clang|cc|make|cmake|rustc|cargo|"
    r"python3?-dev|libc6-dev|golang|protobuf-compiler)\b"
)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse(text: str) -> list[Stage]:
    """Stages of a Dockerfile with their instructions (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert m, line
            stages.append(Stage(m.group(1), m.group(2)))
        elif stages:
            stages[-1].instructions.append((word, rest.strip()))
    return stages


def test_parse_sees_stages_and_joins_lines() -> None:
    stages = parse("FROM a AS b\nRUN x \\\n y\nFROM c\nUSER 1\n")
    assert [(s.base, s.name) for s in stages] == [("a", "b"), ("c", None)]
    assert stages[0].instructions == [("RUN", "x   y")]


def test_dockerfile_is_multi_stage_non_root_without_build_tools() -> None:
    stages = parse((ROOT / "Dockerfile").read_text())
    assert len(stages) >= 2, "multi-stage: build, then a runtime stage"
    final = stages[-1]
    names = {s.name for s in stages[:-1]}
    # USER: numeric uid (and gid), not root; the last USER of the final stage counts.
    users = [arg for op, arg in final.instructions if op == "USER"]
    assert users, "the final stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, users[-1]
    assert not gid or (gid.isdigit() and int(gid) > 0), users[-1]
    # Nothing after USER switches back to root.
    after_user = final.instructions[[op for op, _ in final.instructions].index("USER") :]
    assert not [a for op, a in after_user if op == "RUN"], "no RUN as the service user"
    # The final stage installs no compilers and copies only the virtualenv from the build.
    for op, arg in final.instructions:
        if op == "RUN":
            assert not COMPILERS.search(arg), f"build tool in the final stage: {arg}"
        if op == "COPY" and "--from=" in arg:
            m = re.match(r"--from=(\S+)\s+(\S+)\s+(\S+)$", arg)
            assert m, arg
            assert m.group(1) in names, arg
            assert m.group(2) == "/opt/jembatan" and m.group(3) == "/opt/jembatan", arg
        if op in ("COPY", "ADD") and "--from=" not in arg:
            raise AssertionError(f"the final stage copies sources from the context: {arg}")
    # The build stage is the one with the compilers.
    assert any(COMPILERS.search(a) for s in stages[:-1] for op, a in s.instructions if op == "RUN")


def test_image_runs_one_service_per_command() -> None:
    final = parse((ROOT / "Dockerfile").read_text())[-1]
    instructions = dict(final.instructions)
    assert instructions["ENTRYPOINT"] == '["jembatan"]'
    assert re.fullmatch(r'\["serve", "(\w+)"\]', instructions["CMD"])
    assert re.search(r"\bJEMBATAN_HTTP_HOST=0\.0\.0\.0\b", instructions["ENV"])
    settings = CommonSettings()
    ports = {int(p) for p in instructions["EXPOSE"].split()}
    for service in SERVICES:
        assert getattr(settings, f"{service}_http_port") in ports
    assert len(SERVICES) == 5  # intake, routing, notify, analytics and the pages (web)


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".cache", ".data", "tests"} <= ignored
    for needed in ("jembatan", "services", "proto", "requirements.txt", "pyproject.toml"):
        assert needed not in ignored
