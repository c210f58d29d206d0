"""The pages in a real headless Chromium (Debian's, driven by Playwright), against the
whole ecosystem run as separate processes (embedded mode), walking the loop:

citizen reports with a photo (through a network drop) -> the agency acknowledges,
starts and resolves with a photo -> the citizen sees every step and reopens -> the
agency resolves again -> the citizen confirms -> the public pages count the report.

On every page: axe-core finds no serious or critical violation, the page breaks none of
its own CSP, and its forms are reachable by keyboard alone. The tracking token never
appears in a URL or a header the browser sends, nor in any service's log. A screenshot of
each page on a phone and a desktop viewport goes to docs/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ROOT
from tests.e2e.pages_site import running_site
from tests.tools import unavailable, wait_for

CHROMIUM = Path(os.environ.get("JEMBATAN_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / "services" / "web" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "docs" / "screenshots"
AGENCY_KEY = "dev-bina-marga-2c81d0"  # services/demo/dev_keys.json (embedded demo only)
OPERATOR_KEY = "dev-operator-7f3a91c2"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
BUDGET_BYTES = 100 * 1024  # JS + CSS transferred by a citizen page


def png(width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> bytes:
    rows = []
    for y in range(height):
        f = y / max(1, height - 1)
        rgb = bytes(int(a + (b - a) * f) for a, b in zip(top, bottom, strict=True))
        rows.append(b"\x00" + rgb * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not CHROMIUM.exists() or not AXE.exists():
        message = f"needs {CHROMIUM} (infra/tools.sh apt) and {AXE} (make install)"
        unavailable("Chromium and axe-core", message)
    with running_site(tmp_path_factory.mktemp("pages")) as running:
        yield running


@pytest.fixture(scope="module")
def browser(site: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            yield b
        finally:
            b.close()


class Visitor:
    """One person's browser: records what it sends, checks each page it sees."""

    def __init__(self, browser: Any, base: str, viewport: dict[str, int], name: str) -> None:
        self.context = browser.new_context(viewport=viewport, locale="id-ID")
        self.viewport = viewport
        self.page = self.context.new_page()
        self.base = base
        self.name = name
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.csp_violations: list[str] = []
        self.page.on("request", lambda r: self.sent.append((r.url, r.headers)))
        self.page.on(
            "console",
            lambda m: (
                self.csp_violations.append(m.text) if "Content Security Policy" in m.text else None
            ),
        )
        self.axe_source = AXE.read_text()

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")

    def check(self, shot: str | None = None) -> None:
        """axe-core (serious/critical), no CSP violation, no trace; then a screenshot on
        each viewport (the same page resized: same session, same state)."""
        page = self.page
        assert "Traceback" not in page.content()
        page.evaluate(self.axe_source)  # via DevTools: not subject to the page's CSP
        result = page.evaluate(
            "() => axe.run(document, {resultTypes: ['violations']})"
            ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact,"
            " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
        )
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        assert not bad, f"{page.url}: {bad}"
        assert not self.csp_violations, self.csp_violations
        if shot:
            SHOTS.mkdir(parents=True, exist_ok=True)
            for name, size in (("phone", PHONE), ("desktop", DESKTOP)):
                page.set_viewport_size(size)
                page.wait_for_timeout(150)  # the map re-lays itself out
                page.screenshot(path=str(SHOTS / f"{shot}-{name}.png"))
            page.set_viewport_size(self.viewport)

    def keyboard_reaches(self, ids: list[str], limit: int = 80) -> None:
        """Tab from the top: every listed control takes the focus."""
        page = self.page
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        page.locator("body").focus()
        seen: set[str] = set()
        for _ in range(limit):
            page.keyboard.press("Tab")
            seen.add(page.evaluate("() => document.activeElement.id || ''"))
            if set(ids) <= seen:
                return
        raise AssertionError(f"not reachable by Tab: {sorted(set(ids) - seen)}")

    def transferred(self, kinds: tuple[str, ...]) -> int:
        return int(
            self.page.evaluate(
                "(kinds) => performance.getEntriesByType('resource')"
                ".filter(e => kinds.includes(e.initiatorType))"
                ".reduce((n, e) => n + e.transferSize, 0)",
                list(kinds),
            )
        )

    def close(self) -> None:
        self.context.close()


def test_the_whole_loop_in_a_browser(site: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    base = site["base"]
    before = tmp_path / "lubang.png"
    after = tmp_path / "ditambal.png"
    before.write_bytes(png(320, 200, (120, 90, 60), (60, 50, 40)))
    after.write_bytes(png(320, 200, (90, 90, 95), (40, 40, 45)))
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    citizen = Visitor(browser, base, PHONE, "phone")
    officer = Visitor(browser, base, DESKTOP, "desktop")
    try:
        # 1. The citizen reports with a photo; the network drops on the first try.
        c = citizen.page
        citizen.go("/")
        citizen.check("report")
        report_bytes = citizen.transferred(("script", "link", "css"))
        print(f"JS+CSS transferred by the report page: {report_bytes} bytes")
        assert 0 < report_bytes <= BUDGET_BYTES
        citizen.keyboard_reaches(
            ["photo", "lat", "lon", "address", "description", "email", "submit"]
        )
        c.locator("input[name=category][value=road-damage]").check()
        c.set_input_files("#photo", str(before))
        c.fill("#lat", "-6.1754")
        c.fill("#lon", "106.8272")
        c.fill("#address", "Jl. Medan Merdeka Barat")
        c.fill("#description", "Jalan berlubang besar di depan halte, berbahaya untuk motor.")
        c.fill("#email", "warga@example.id")
        citizen.context.set_offline(True)
        c.locator("#submit").press("Enter")
        # "sending…" first, then, once the request failed, the draft is kept
        c.locator("#draft-note", has_text="Draf disimpan").wait_for(timeout=15_000)
        assert c.url.endswith("/")  # still on the form, nothing lost
        citizen.context.set_offline(False)
        c.wait_for_url("**/reports/JKT-*", timeout=30_000)
        report_id = c.url.rsplit("/", 1)[-1]
        tokens = c.evaluate("() => JSON.parse(localStorage.getItem('jembatan.tokens'))")
        token = tokens[report_id]
        assert token
        citizen.check("tracking-new")
        tracking_bytes = citizen.transferred(("script", "link", "css"))
        print(f"JS+CSS transferred by the tracking page: {tracking_bytes} bytes")
        assert 0 < tracking_bytes <= BUDGET_BYTES
        tracking_url = c.url
        citizen.go("/track")  # away while the agency works: no live reload races the test

        # 2. The agency acknowledges, starts and resolves with a photo.
        o = officer.page
        officer.go("/agency")
        officer.check("agency-signin")
        officer.keyboard_reaches(["key", "signin"])
        o.fill("#key", AGENCY_KEY)
        o.locator("#key").press("Enter")
        o.wait_for_url("**/agency/cases")

        def case_listed() -> bool:
            officer.go("/agency/cases")
            return o.locator(f"a:text('{report_id}')").count() > 0

        wait_for(case_listed, "the case in the agency's queue", timeout=40.0, every=0.5)
        officer.check("agency-queue")
        o.locator(f"a:text('{report_id}')").click()
        o.wait_for_load_state("networkidle")
        officer.check("agency-case")
        case_url = o.url

        def act(action: str, **fill: str) -> None:
            for selector, value in fill.items():
                if selector == "evidence":
                    o.set_input_files("#evidence", value)
                else:
                    o.fill(f"#{selector}", value)
            o.locator(f"#do-{action}").click()
            o.wait_for_load_state("networkidle")
            assert "Tersimpan" in o.content(), o.content()

        act("acknowledge")
        act("start")
        act("resolve", **{"resolve-note": "Lubang sudah ditambal.", "evidence": str(after)})
        assert "Selesai" in o.inner_text("#status")

        # 3. The citizen sees every step and reopens.
        def shows(status: str) -> bool:
            c.goto(tracking_url)
            return status in c.inner_text("#status")

        wait_for(
            lambda: shows("Selesai"), "the resolution on the tracking page", timeout=40.0, every=0.5
        )
        timeline = c.inner_text("#timeline")
        for step in ("Diteruskan ke instansi", "Ditanggapi", "Sedang dikerjakan", "Selesai"):
            assert step in timeline, timeline
        assert c.locator("img[alt='Foto sebelum']").count() == 1
        assert c.locator("img[alt='Foto sesudah (bukti)']").count() == 1
        assert not c.locator("#token-reopen").is_visible()  # filled from this browser
        citizen.check("tracking-resolved")
        c.fill("#reason", "Lubangnya masih ada di sisi kiri.")
        c.locator("#reopen").click()
        c.wait_for_load_state("networkidle")
        assert "tanggapan Anda tersimpan" in c.content()
        citizen.go("/track")

        # 4. The agency resolves again (the reopened case is back in its queue).
        def reopened() -> bool:
            o.goto(case_url)
            return o.locator("#do-acknowledge").count() > 0

        wait_for(reopened, "the reopened case", timeout=40.0, every=0.5)
        act("acknowledge")
        act("start")
        act("resolve", **{"resolve-note": "Sisi kiri juga sudah ditambal.", "evidence": str(after)})

        # 5. The citizen confirms.
        wait_for(lambda: shows("Selesai"), "the second resolution", timeout=40.0, every=0.5)
        assert "Dibuka kembali" in c.inner_text("#timeline")
        c.locator("#confirm").click()
        c.wait_for_load_state("networkidle")
        wait_for(lambda: shows("Ditutup"), "the confirmation", timeout=40.0, every=0.5)
        citizen.check("tracking-closed")

        # 6. The public pages count it.
        district = "jakarta-pusat.gambir"

        def counted() -> bool:
            citizen.go(f"/districts/{district}")
            return int(c.inner_text("#m-resolved")) >= 1 and report_id in c.inner_text("#reports")

        wait_for(counted, "the report in the district's figures", timeout=40.0, every=0.5)
        citizen.check("district")
        citizen.go("/city")
        assert c.locator(f"#league-districts a[href='/districts/{district}']").count() == 1
        citizen.check("city")
        citizen.go("/track")
        assert report_id in c.inner_text("#my-reports")
        citizen.check("track")
        citizen.go("/subscriptions/unsubscribe?token=t")
        citizen.check("unsubscribe")
        citizen.go("/no-such-page")
        citizen.check()
        citizen.go("/?lang=en")
        assert "Report a problem" in c.content()
        citizen.check("report-en")

        # The operator sees the reports nobody could route and the rules in force.
        officer.go("/agency/cases")
        o.locator("form.signout button").click()
        o.wait_for_url("**/agency")
        o.fill("#key", OPERATOR_KEY)
        o.locator("#signin").click()
        o.wait_for_url("**/operator")
        assert o.locator("#rules tbody tr").count() > 10
        officer.check("operator")

        # The token never left the browser in a URL or a header (Referer included) ...
        for url, headers in citizen.sent + officer.sent:
            assert token not in url
            assert all(token not in v for v in headers.values()), (url, headers)
        # ... and no service logged it.
        logs = [site["workdir"] / "web.log"] + sorted(site["workdir"].glob("*.log"))
        for path in logs:
            assert token not in path.read_text(errors="replace"), path
    finally:
        citizen.close()
        officer.close()


def test_without_javascript_the_forms_still_work_and_bad_input_is_kept(
    site: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    photo = tmp_path / "sampah.png"
    photo.write_bytes(png(200, 120, (90, 120, 60), (40, 60, 30)))
    context = browser.new_context(viewport=PHONE, java_script_enabled=False, locale="en-GB")
    page = context.new_page()
    try:
        page.goto(site["base"] + "/")
        assert page.locator("#map").is_hidden()  # no script, no map: the fields remain
        page.locator("input[name=category][value=garbage]").check()
        page.fill("#lat", "somewhere")
        page.fill("#lon", "106.8663")
        page.fill("#description", "Garbage not collected for a week")
        page.locator("#submit").click()
        page.wait_for_load_state()
        # Bad input: a clear message in the reader's language, what was typed kept.
        assert "Latitude must be a number" in page.inner_text("#error-summary")
        assert page.input_value("#description") == "Garbage not collected for a week"
        assert page.input_value("#lat") == "somewhere"
        assert page.locator("input[name=category][value=garbage]").is_checked()
        page.fill("#lat", "-6.2297")
        page.set_input_files("#photo", str(photo))
        page.locator("#submit").click()
        page.wait_for_load_state()
        token = page.inner_text("#tracking-token")
        report_id = page.inner_text("#report-id")
        assert token and report_id.startswith("JKT-")
        page.locator("a.button").click()
        page.wait_for_load_state()
        assert report_id in page.inner_text("h1")
        assert page.locator("img[alt='Before']").count() == 1
        assert "Traceback" not in page.content()
    finally:
        context.close()
