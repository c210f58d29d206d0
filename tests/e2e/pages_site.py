"""The ecosystem as separate processes (embedded mode) plus the pages (web), for the
tests that use the pages: the browser walk and the simulated day through the pages."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import ROOT, Ecosystem, free_port


@contextmanager
def running_site(workdir: Path) -> Iterator[dict[str, Any]]:
    """Yields {"base": the pages' URL, "eco": the Ecosystem, "workdir": its logs}."""
    eco = Ecosystem(mode="embedded", workdir=workdir)
    # the local demo, as `make run` starts it: the published development keys work here
    eco.extra_env["JEMBATAN_DEV_KEYS"] = "true"
    eco.start()
    web_port = free_port()
    env = eco.env()
    env["JEMBATAN_WEB_HTTP_PORT"] = str(web_port)
    log = open(workdir / "web.log", "ab")  # noqa: SIM115 (closed below)
    web = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "web"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert web.poll() is None, (workdir / "web.log").read_text()
            time.sleep(0.3)
        else:
            raise AssertionError("web not ready:\n" + (workdir / "web.log").read_text())
        yield {"base": base, "eco": eco, "workdir": workdir}
    finally:
        web.terminate()
        try:
            web.wait(20)
        except subprocess.TimeoutExpired:
            web.kill()
        log.close()
        eco.stop()
