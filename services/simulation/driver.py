"""Drives a planned day through the public APIs and reconciles what every service says.

Only public interfaces are used: intake's REST API (service definitions, media, reports,
"me too", feedback), routing's agency and operator APIs, notify's subscriptions (a
supporter who asks is told through the supporters' app, ``followers``) and in-app feed,
analytics' query API and league, and each service's /metrics. The summary's checks compare
the services with each other and with what the simulation did; a check that does not hold
is a failure (``Summary.ok``).

SLA breaches come from the ecosystem's clock, never from the simulation's: agencies that
leave cases waiting breach them once the deadlines routing set have passed. With routing's
development SLA speed-up (``jembatan run --sla-speedup``) those deadlines are seconds
away; the simulation waits (at most ``breach_wait``) for the ones that fall due, then checks
that routing announced them and that analytics and its league counted them.
"""

from __future__ import annotations

import functools
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from jembatan import clock
from services.simulation.followers import FollowersApp
from services.simulation.pages import Citizen, Officer
from services.simulation.scenario import AgencyPlan, Day, PlannedReport, answer_questions

# A 1x1 JPEG: the evidence photo agencies attach when they resolve.
EVIDENCE_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b"
    "0b0c1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e3334"
    "32ffc0000b080001000101011100ffc4001f0000010501010101010100000000000000000102030405060708"
    "090a0bffc400b5100002010303020403050504040000017d01020300041105122131410613516107227114"
    "328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748"
    "494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999a"
    "a2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8"
    "e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbd3ffd9"
)
#: What a reporter must hear about, written down here on purpose rather than imported from
#: notify: the reconciliation is an independent oracle of notify's promise.
REPORTER_EVENTS = frozenset(
    {
        "report.submitted",
        "report.feedback",
        "report.supported",
        "case.routed",
        "case.duplicate",
        "case.acknowledged",
        "case.started",
        "case.resolved",
        "case.rejected",
        "case.transferred",
        "case.reopened",
    }
)
DEADLINES = ("acknowledge", "resolve")
CITIES = ("jakarta-pusat", "jakarta-utara", "jakarta-barat", "jakarta-selatan", "jakarta-timur")
DEV_KEYS = Path(__file__).resolve().parents[1] / "demo" / "dev_keys.json"


@dataclass(frozen=True)
class Endpoints:
    intake: str
    routing: str
    notify: str
    analytics: str
    operator_key: str
    web: str = ""  # the pages; citizens and officers of the pages' share use them

    @classmethod
    def local(
        cls,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        operator_key: str | None = None,
    ) -> Endpoints:
        p = {"intake": 8000, "routing": 8001, "notify": 8002, "analytics": 8003, **(ports or {})}
        if operator_key is None:
            keys = json.loads(DEV_KEYS.read_text())["keys"]
            operator_key = next(k["key"] for k in keys if k["role"] == "operator")
        urls = {s: f"http://{host}:{port}" for s, port in p.items()}
        return cls(
            urls["intake"],
            urls["routing"],
            urls["notify"],
            urls["analytics"],
            operator_key,
            urls.get("web", ""),
        )


@dataclass
class Accepted:
    plan: PlannedReport
    report_id: str
    token: str
    feedback_sent: list[str] = field(default_factory=list)  # kinds that notify thanks for
    answers: dict[str, Any] = field(default_factory=dict)  # to the category's questions
    photo: str | None = None  # media id of the citizen's photo
    supported_by: list[str] = field(default_factory=list)  # supporter ids intake added
    followers: dict[str, str] = field(default_factory=dict)  # supporter id -> webhook secret


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def tally(name: str, total: int, failures: list[str], noun: str) -> Check:
    """A check over ``total`` items: it holds when none failed; a few failures shown."""
    detail = f"{total - len(failures)}/{total} {noun}"
    return Check(name, not failures, detail + (f"; e.g. {failures[:2]}" if failures else ""))


@dataclass
class Summary:
    counts: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    league: list[dict[str, Any]] = field(default_factory=list)
    league_provisional: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def render(self) -> str:
        lines = [f"Simulated day finished in {self.seconds:.1f} s", ""]
        width = max(len(k) for k in self.counts) if self.counts else 10
        for key, value in self.counts.items():
            lines.append(f"  {key:<{width}}  {value}")
        lines += ["", "Reconciliation:"]
        for c in self.checks:
            lines.append(f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
        if self.league:
            lines += ["", "League table of districts (best follow-up first):"]
            if self.league_provisional:
                lines.append("  (provisional: no district has the minimum sample yet)")
            for row in self.league[:10]:
                breaches = row.get("sla_breaches") or {}
                lines.append(
                    f"  {row.get('rank', '-'):>3}  {row.get('name') or row.get('id'):<28}"
                    f" score {row.get('score') or 0:.3f}"
                    f"  SLA breaches: ack {breaches.get('acknowledge', 0)},"
                    f" resolve {breaches.get('resolve', 0)}"
                )
        return "\n".join(lines)


class Progress:
    """A progress bar on stderr, one line, redrawn in place."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.lock = threading.Lock()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        with self.lock:
            sys.stderr.write(
                f"\r{phase:<12} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
            )
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def report_body(
    p: PlannedReport, answers: dict[str, Any] | None = None, photo: str | None = None
) -> dict[str, Any]:
    """The REST body of a planned report: its answers and photo attached, its planned
    mistake (``p.bad``) made."""
    body: dict[str, Any] = {
        "category": p.category,
        "description": p.description,
        "location": {"lat": p.lat, "lon": p.lon},
        "language": p.language,
    }
    if p.email:
        body["contact"] = {"email": p.email}
    if answers:
        body["attributes"] = answers
    if photo:
        body["photos"] = [photo]
    if p.bad == "unknown_category":
        body["category"] = "alien-landing"
    elif p.bad == "outside_city":
        body["location"] = {"lat": -7.25, "lon": 112.75}  # Surabaya
    elif p.bad == "empty_description":
        body["description"] = ""
    elif p.bad == "bad_coordinates":
        body["location"] = {"lat": 123.0, "lon": 500.0}
    return body


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class Simulation:
    def __init__(
        self,
        endpoints: Endpoints,
        day: Day,
        workers: int = 8,
        progress: bool = True,
        settle_timeout: float = 180.0,
        dead_letters: Callable[[], int] | None = None,
        pages_share: float = 0.0,
        breach_wait: float = 45.0,
    ) -> None:
        """``dead_letters``: how many dead-lettered records count against the day; by
        default the services' jembatan_dead_letters_total (tests that inject poison on
        purpose count the others from the dead-letter topics themselves). ``breach_wait``:
        how long after the agencies' work the day waits for deadlines of the cases left
        waiting (only those due within it are expected to breach)."""
        self.e = endpoints
        self.day = day
        self.workers = workers
        self.progress = Progress(progress)
        self.settle_timeout = settle_timeout
        self.http = httpx.Client(timeout=30.0, limits=httpx.Limits(max_connections=workers * 4))
        self.accepted: list[Accepted] = []
        self.refused: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.retries_same_id = 0
        self.rate_limited = 0
        self.agency_keys: dict[str, str] = {}
        self.agencies: list[str] = []
        self.evidence: dict[str, str] = {}
        # What the ecosystem had counted before this day began: a second run on the same
        # ecosystem reconciles what it added, not the totals of every earlier day.
        self.analytics_before: dict[str, int] = {}
        self.dead_letters_before = 0
        self.deliveries_before = 0.0
        self.dead_letters = dead_letters or self._dead_letters_from_metrics
        self.actions: Counter[str] = Counter()
        self._lock = threading.Lock()
        # One report in every `pages_every` goes through the pages: its citizen reports and
        # gives feedback there, and its agency works the case there.
        if pages_share > 0 and not endpoints.web:
            raise ValueError("a share through the pages needs the pages' address")
        self.pages_every = round(1 / pages_share) if pages_share > 0 else 0
        self.page_reports: set[str] = set()
        self.officers: dict[str, Officer] = {}
        self.through_pages: Counter[str] = Counter()
        self.breach_wait = breach_wait
        self.definitions: dict[str, list[dict[str, Any]]] = {}
        self.breaches_before: Counter[str] = Counter()
        self.supporters_before: Counter[str] = Counter()
        self.league_breaches_before: Counter[str] = Counter()
        self.expected_breaches: dict[str, set[str]] = {d: set() for d in DEADLINES}
        self.followers = FollowersApp()
        self.supports_repeated = 0
        self.follow_refused = 0
        # what an app's citizen sends with a report: (answers, photo media id), by index
        self.attached: dict[int, tuple[dict[str, Any], str | None]] = {}

    def via_pages(self, p: PlannedReport) -> bool:
        return bool(self.pages_every) and p.index % self.pages_every == 0

    # -- plumbing ---------------------------------------------------------------------
    def _parallel(self, phase: str, items: list[Any], fn: Callable[[Any], None]) -> None:
        done = 0
        self.progress(phase, 0, len(items))

        def run(item: Any) -> None:
            nonlocal done
            try:
                fn(item)
            except Exception as exc:  # keep going; the checks will show it
                with self._lock:
                    self.unexpected.append(f"{phase}: {type(exc).__name__}: {exc}"[:300])
            with self._lock:
                done += 1
                self.progress(phase, done, len(items))

        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(run, items))

    def _operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.e.operator_key}"}

    def _agency(self, agency_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agency_keys[agency_id]}"}

    # -- phases -----------------------------------------------------------------------
    def setup(self) -> None:
        names = ("intake", "routing", "notify", "analytics") + (
            ("web",) if self.pages_every else ()
        )
        for name in names:
            url: str = getattr(self.e, name)
            if not wait_until(functools.partial(self._ready, url), 90, 1.0):
                raise RuntimeError(f"{name} at {url} is not ready")
        # A city analytics has never seen answers -1: it had counted nothing yet.
        self.analytics_before = {c: max(n, 0) for c, n in self.analytics_totals().items()}
        self.dead_letters_before = self.dead_letters()
        self.deliveries_before = self._metric_sum(self.e.notify, "jembatan_notify_deliveries_total")
        self.breaches_before = self.analytics_breaches()
        self.supporters_before = self.analytics_supporters()
        self.league_breaches_before = self.league_breaches()
        self.definitions = self._definitions()
        r = self.http.get(f"{self.e.routing}/v1/admin/agencies", headers=self._operator())
        r.raise_for_status()
        self.agencies = sorted(a["id"] for a in r.json()["items"])
        for agency_id in self.agencies:  # one key per agency, shown once by the admin API
            r = self.http.post(
                f"{self.e.routing}/v1/admin/keys",
                headers=self._operator(),
                json={"role": "agency", "subject": agency_id},
            )
            r.raise_for_status()
            self.agency_keys[agency_id] = r.json()["key"]
            if self.pages_every:
                self.officers[agency_id] = Officer(self.e.web, self.agency_keys[agency_id])
        r = self.http.post(
            f"{self.e.intake}/v1/media",
            files={"file": ("evidence.jpg", EVIDENCE_JPEG, "image/jpeg")},
        )
        r.raise_for_status()
        media = r.json()
        self.evidence = {
            "media_id": media["media_id"],
            "url": media["url"],
            "content_type": media["content_type"],
        }

    def _definitions(self) -> dict[str, list[dict[str, Any]]]:
        """The questions of every category, as an app reads them before its form."""
        r = self.http.get(f"{self.e.intake}/v1/categories")
        r.raise_for_status()
        out: dict[str, list[dict[str, Any]]] = {}
        for category in r.json()["categories"]:
            d = self.http.get(f"{self.e.intake}/v1/categories/{category['id']}/attributes")
            out[category["id"]] = d.json().get("attributes", []) if d.status_code == 200 else []
        return out

    def answers_for(self, p: PlannedReport) -> dict[str, Any]:
        return answer_questions(self.definitions.get(p.category, []), random.Random(p.answers_seed))

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request as a well-behaved client sends it: on 429 wait as told, then again."""
        for _ in range(60):
            r = self.http.request(method, url, **kwargs)
            if r.status_code != 429:
                return r
            with self._lock:
                self.rate_limited += 1
            time.sleep(min(10.0, float(r.headers.get("Retry-After", "1"))))
        return r

    def _upload_photo(self) -> str:
        r = self._send(
            "POST",
            f"{self.e.intake}/v1/media",
            files={"file": ("foto.jpg", EVIDENCE_JPEG, "image/jpeg")},
        )
        if r.status_code != 201:
            raise RuntimeError(f"photo upload: {r.status_code} {r.text[:200]}")
        return str(r.json()["media_id"])

    def _ready(self, base: str) -> bool:
        try:
            return self.http.get(f"{base}/readyz", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def submit_all(self) -> None:
        self._parallel("reporting", self.day.reports, self._submit)
        self.accepted.sort(key=lambda a: a.plan.index)

    def _body(self, p: PlannedReport) -> dict[str, Any]:
        answers, photo = self.attached.get(p.index, ({}, None))
        return report_body(p, answers, photo)

    def _post_report(
        self, p: PlannedReport, citizen: Citizen | None = None
    ) -> tuple[int, str, str, str]:
        """Submit as a well-behaved app (or the pages' script) does: on 429, wait as told and
        send again with the same Idempotency-Key (all simulated citizens share this
        machine's address). (status, report id, tracking token, text) of the answer."""
        headers = {"Idempotency-Key": p.idempotency_key}
        for _ in range(60):
            if citizen is not None:
                status, out, wait = citizen.submit(self._form(p), p.idempotency_key)
                report_id, token = out.get("report_id", ""), out.get("tracking_token", "")
                text = str(out)[:200]
            else:
                r = self.http.post(
                    f"{self.e.intake}/v1/reports",
                    json=self._body(p),
                    headers=headers,
                )
                status, wait, text = r.status_code, float(r.headers.get("Retry-After", "1")), r.text
                out = r.json() if status in (200, 201) else {}
                report_id = out.get("report", {}).get("id", "")
                token = out.get("tracking_token", "")
            if status != 429:
                return status, report_id, token, text[:200]
            with self._lock:
                self.rate_limited += 1
            time.sleep(min(10.0, wait))
        return status, report_id, token, text[:200]

    def _form(self, p: PlannedReport) -> dict[str, str]:
        """The report form's fields, as a person fills them in on the pages."""
        body = self._body(p)
        return {
            "category": body["category"],
            "description": body["description"],
            "lat": str(body["location"]["lat"]),
            "lon": str(body["location"]["lon"]),
            "email": body.get("contact", {}).get("email", ""),
            "language": body["language"],
        }

    def _submit(self, p: PlannedReport) -> None:
        citizen = Citizen(self.e.web) if self.via_pages(p) else None
        try:
            self._submit_as(p, citizen)
        finally:
            if citizen is not None:
                citizen.close()

    def _submit_as(self, p: PlannedReport, citizen: Citizen | None) -> None:
        # The pages' form asks no category questions and the pages' script sends no photo;
        # an app's citizen answers the questions and, some, attaches a photo first.
        answers = self.answers_for(p) if citizen is None and p.bad is None else {}
        photo = self._upload_photo() if citizen is None and p.photo else None
        with self._lock:
            self.attached[p.index] = (answers, photo)
        status, report_id, token, text = self._post_report(p, citizen)
        if p.bad:
            with self._lock:
                if status == 422:
                    self.refused[p.bad] += 1
                else:
                    self.unexpected.append(f"bad request {p.bad} got {status}")
            return
        if status != 201:
            with self._lock:
                self.unexpected.append(f"report {p.index}: {status} {text}")
            return
        if p.retry:  # the phone did not see the answer and sends again
            again, again_id, _, _ = self._post_report(p, citizen)
            replayed = 201 if citizen is not None else 200  # the pages answer their script 201
            with self._lock:
                if again == replayed and again_id == report_id:
                    self.retries_same_id += 1
                else:
                    self.unexpected.append(f"retry of {p.index}: {again}")
        with self._lock:
            self.accepted.append(Accepted(p, report_id, token, answers=answers, photo=photo))
            if citizen is not None:
                self.page_reports.add(report_id)
                self.through_pages["reports"] += 1

    def case_of(self, report_id: str) -> dict[str, Any] | None:
        r = self.http.get(f"{self.e.routing}/v1/admin/cases/{report_id}", headers=self._operator())
        return r.json() if r.status_code == 200 else None

    def wait_routed(self) -> None:
        pending = {a.report_id for a in self.accepted}
        total = len(pending)
        deadline = time.monotonic() + self.settle_timeout
        while pending and time.monotonic() < deadline:
            for report_id in list(pending):
                if self.case_of(report_id) is not None:
                    pending.discard(report_id)
            self.progress("routing", total - len(pending), total)
            if pending:
                time.sleep(0.5)
        if pending:
            self.unexpected.append(f"{len(pending)} reports never got a case")

    def support_all(self) -> None:
        """Other citizens find open reports and say "me too"; some ask to be told."""
        wanted = [a for a in self.accepted if a.plan.supporters and a.plan.duplicate_of is None]
        self._parallel("me too", wanted, self._support)

    def _support(self, a: Accepted) -> None:
        case = self.case_of(a.report_id)
        if case is None or case.get("duplicate_of"):
            return  # routing linked it to an earlier report: its supporters go there
        if not wait_until(lambda: self._intake_status(a.report_id) == "routed", 60, 0.3):
            raise RuntimeError(f"{a.report_id} never showed routed in intake")
        url = f"{self.e.intake}/v1/reports/{a.report_id}/support"
        for n, supporter in enumerate(a.plan.supporter_ids):
            r = self._send("POST", url, json={"supporter_id": supporter})
            if r.status_code != 201:
                raise RuntimeError(f"me too on {a.report_id}: {r.status_code} {r.text[:200]}")
            a.supported_by.append(supporter)
            if n == 0:  # the first supporter's phone sends it again: still one supporter
                again = self._send("POST", url, json={"supporter_id": supporter})
                if again.status_code != 200 or again.json().get("added") is not False:
                    raise RuntimeError(f"repeated me too on {a.report_id}: {again.status_code}")
                with self._lock:
                    self.supports_repeated += 1
            if n < a.plan.followers:
                self._follow(a, supporter)

    def _follow(self, a: Accepted, supporter: str) -> None:
        """Ask to be told when it is fixed: a report subscription at notify, delivered to
        the supporters' app (which answers notify's verification challenge)."""
        r = self._send(
            "POST",
            f"{self.e.notify}/v1/subscriptions",
            json={
                "channel": "webhook",
                "url": self.followers.url_for(supporter),
                "report_id": a.report_id,
                "language": a.plan.language,
            },
        )
        if r.status_code == 422 and "url" in (r.json().get("error", {}).get("fields") or {}):
            # notify's webhooks may not reach this machine (production refuses private
            # targets unless listed): the supporter cannot follow from here; the summary says so
            with self._lock:
                self.follow_refused += 1
            return
        if r.status_code != 201:
            raise RuntimeError(f"follow {a.report_id}: {r.status_code} {r.text[:200]}")
        a.followers[supporter] = r.json()["secret"]

    def work_cases(self) -> None:
        originals = [a for a in self.accepted if a.plan.duplicate_of is None]
        self._parallel("agencies", originals, self._work)

    def _act(
        self, case: dict[str, Any], action: str, agency_id: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if case["report_id"] in self.page_reports:
            return self._act_on_page(case, action, agency_id, body or {})
        r = self.http.post(
            f"{self.e.routing}/v1/cases/{case['case_id']}/{action}",
            headers=self._agency(agency_id),
            json={"version": case["version"], **(body or {})},
        )
        if r.status_code != 200:
            raise RuntimeError(f"{action} on {case['case_id']}: {r.status_code} {r.text[:200]}")
        with self._lock:
            self.actions[action] += 1
        return r.json()  # type: ignore[no-any-return]

    def _act_on_page(
        self, case: dict[str, Any], action: str, agency_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """The officer's form on the case page (resolve uploads the evidence photo there);
        the new state is read back as any client would."""
        fields: dict[str, str] = {
            k: str(body[k]) for k in ("note", "reason", "to_agency_id") if k in body
        }
        photo = EVIDENCE_JPEG if action == "resolve" else None
        self.officers[agency_id].act(case["case_id"], action, case["version"], fields, photo)
        with self._lock:
            self.actions[action] += 1
            self.through_pages["agency actions"] += 1
        after = self.case_of(case["report_id"])
        if after is None:
            raise RuntimeError(f"{action} on {case['case_id']}: the case is gone")
        return after

    def _resolve_path(self, case: dict[str, Any], plan: AgencyPlan) -> dict[str, Any]:
        agency = case["agency_id"]
        case = self._act(case, "acknowledge", agency, {"note": "Diterima"})
        case = self._act(case, "start", agency)  # resolving needs the work started
        return self._act(
            case, "resolve", agency, {"note": "Sudah ditangani petugas", "media": [self.evidence]}
        )

    def _work(self, a: Accepted) -> None:
        plan = self.day.plans[a.plan.index]
        case = self.case_of(a.report_id)
        if case is None or case.get("duplicate_of"):
            return
        agency = case["agency_id"]
        if plan.outcome == "leave":
            if plan.acknowledge:
                self._act(case, "acknowledge", agency)
            return
        if plan.outcome == "reject":
            case = self._act(case, "acknowledge", agency)
            self._act(case, "reject", agency, {"reason": "Bukan kewenangan kami / out of scope"})
            return
        if plan.outcome == "transfer":
            others = [x for x in self.agencies if x != agency]
            target = others[a.plan.index % len(others)]
            case = self._act(
                case,
                "transfer",
                agency,
                {"to_agency_id": target, "reason": "Wilayah kerja instansi lain"},
            )
        case = self._resolve_path(case, plan)
        self._reporter(a, case, plan)

    def _feedback(self, a: Accepted, body: dict[str, Any]) -> None:
        if a.report_id in self.page_reports:
            citizen = Citizen(self.e.web)
            try:
                citizen.feedback(a.report_id, a.token, {k: str(v) for k, v in body.items()})
            finally:
                citizen.close()
            with self._lock:
                self.through_pages["citizen feedback"] += 1
            return
        r = self.http.post(
            f"{self.e.intake}/v1/reports/{a.report_id}/feedback",
            headers={"X-Tracking-Token": a.token},
            json=body,
        )
        if r.status_code not in (200, 201):
            raise RuntimeError(
                f"feedback {body['kind']} on {a.report_id}: {r.status_code} {r.text[:200]}"
            )

    def _intake_status(self, report_id: str) -> str | None:
        r = self.http.get(f"{self.e.intake}/v1/reports/{report_id}")
        return r.json().get("status") if r.status_code == 200 else None

    def _reporter(self, a: Accepted, case: dict[str, Any], plan: AgencyPlan) -> None:
        if plan.reporter == "nothing":
            return
        if not wait_until(lambda: self._intake_status(a.report_id) == "resolved", 60, 0.3):
            raise RuntimeError(f"{a.report_id} never showed resolved in intake")
        if plan.reporter == "confirm":
            self._feedback(a, {"kind": "confirm"})
            a.feedback_sent.append("confirm")
        elif plan.reporter == "rate":
            self._feedback(a, {"kind": "rating", "rating": 2 + a.plan.index % 4})
            a.feedback_sent.append("rating")
        elif plan.reporter == "reopen":
            self._feedback(a, {"kind": "reopen", "reason": "Masih rusak / still broken"})

            def reopened() -> bool:
                c = self.case_of(a.report_id)
                return bool(c and c.get("reopen_count", 0) >= 1 and c["status"] == "routed")

            if not wait_until(reopened, 60, 0.3):
                raise RuntimeError(f"{a.report_id} was not reopened by routing")
            again = self.case_of(a.report_id)
            assert again is not None
            self._resolve_path(again, plan)

    def await_deadlines(self) -> None:
        """Cases agencies left waiting breach once routing's deadlines pass: those due within
        ``breach_wait`` are expected to; wait until the last of them is due."""
        horizon = clock.now() + timedelta(seconds=self.breach_wait)
        latest = None
        for a in self.accepted:
            if a.plan.duplicate_of is not None or self.day.plans[a.plan.index].outcome != "leave":
                continue
            case = self.case_of(a.report_id)
            if case is None or case.get("duplicate_of"):
                continue
            dues = {"resolve": case["resolve_due"]}
            if case["status"] == "routed":  # never acknowledged
                dues["acknowledge"] = case["ack_due"]
            for deadline, due in dues.items():
                at = clock.parse(due)
                if at <= horizon:
                    self.expected_breaches[deadline].add(a.report_id)
                    latest = at if latest is None else max(latest, at)
        if latest is not None:
            wait = (latest - clock.now()).total_seconds()
            self.progress("deadlines", 0, 1)
            time.sleep(max(0.0, min(wait, self.breach_wait)))
            self.progress("deadlines", 1, 1)

    # -- reconciliation -----------------------------------------------------------------
    def city_metrics(self) -> dict[str, dict[str, Any] | None]:
        """Analytics' metrics of each city (None: a city it has not seen yet)."""
        out: dict[str, dict[str, Any] | None] = {}
        for city in CITIES:
            r = self.http.get(f"{self.e.analytics}/v1/cities/{city}")
            out[city] = r.json()["metrics"] if r.status_code == 200 else None
        return out

    def analytics_breaches(self) -> Counter[str]:
        """Reports with a breached deadline, over the five cities, as analytics counts."""
        out: Counter[str] = Counter()
        for m in self.city_metrics().values():
            out.update((m or {}).get("sla_breaches") or {})
        return out

    def analytics_supporters(self) -> Counter[str]:
        """ "Me too" by city, as analytics counts it."""
        return Counter(
            {c: int((m or {}).get("supporters") or 0) for c, m in self.city_metrics().items()}
        )

    def league_breaches(self) -> Counter[str]:
        """The same, summed over every row of the districts' league (ranked or not)."""
        out: Counter[str] = Counter()
        r = self.http.get(f"{self.e.analytics}/v1/league/districts")
        if r.status_code == 200:
            body = r.json()
            for row in (body.get("ranked") or []) + (body.get("unranked") or []):
                out.update(row.get("sla_breaches") or {})
        return out

    @staticmethod
    def breached(case: dict[str, Any] | None) -> set[str]:
        """The deadlines routing announced as breached for a case (its history)."""
        return {
            str(h["details"].get("deadline"))
            for h in (case or {}).get("history", [])
            if h["type"] == "case.sla_breached"
        }

    def analytics_totals(self) -> dict[str, int]:
        return {c: m["reports"] if m else -1 for c, m in self.city_metrics().items()}

    def _metric_sum(self, base: str, name: str) -> float:
        text = self.http.get(f"{base}/metrics").text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def _dead_letters_from_metrics(self) -> int:
        return int(
            sum(
                self._metric_sum(getattr(self.e, n), "jembatan_dead_letters_total")
                for n in ("intake", "routing", "notify", "analytics")
            )
        )

    def _expected_feed(self, a: Accepted, case: dict[str, Any]) -> Counter[str]:
        expected: Counter[str] = Counter({"report.submitted": 1})
        for h in case.get("history", []):
            if h["type"] in REPORTER_EVENTS:
                expected[h["type"]] += 1
        expected["report.feedback"] += len(a.feedback_sent)
        expected["report.supported"] += len(a.supported_by)  # the reporter hears of each
        return +expected

    def _feed(self, a: Accepted) -> Counter[str]:
        r = self.http.get(
            f"{self.e.notify}/v1/reports/{a.report_id}/feed", headers={"X-Tracking-Token": a.token}
        )
        if r.status_code != 200:
            return Counter()
        return Counter(
            re.sub(r"^org\.jembatan\.|\.v\d+$", "", i["event_type"]) for i in r.json()["items"]
        )

    def reconcile(self) -> Summary:
        s = Summary()
        cases = {a.report_id: self.case_of(a.report_id) for a in self.accepted}
        statuses = Counter(
            ("duplicate" if c.get("duplicate_of") else c["status"]) if c else "missing"
            for c in cases.values()
        )
        s.checks.append(
            Check(
                "every accepted report has a case",
                statuses.get("missing", 0) == 0,
                f"{len(self.accepted) - statuses.get('missing', 0)}/{len(self.accepted)}",
            )
        )

        def intake_agrees() -> list[str]:
            wrong = []
            for a in self.accepted:
                c = self.case_of(a.report_id)
                mine = self._intake_status(a.report_id)
                if c is None or mine is None:
                    wrong.append(a.report_id)
                    continue
                norm = {
                    "closed": "resolved",
                    "reopened": "routed",
                    "reopen_requested": "resolved",
                    "duplicate": "routed",
                }.get(mine, mine)
                if norm != c["status"]:
                    wrong.append(f"{a.report_id}: intake {mine}, routing {c['status']}")
            return wrong

        wrong: list[str] = []
        wait_until(
            lambda: not (wrong.__setitem__(slice(None), intake_agrees()) or wrong),
            self.settle_timeout,
            1.0,
        )
        s.checks.append(
            Check(
                "intake's read model agrees with routing",
                not wrong,
                f"{len(self.accepted) - len(wrong)}/{len(self.accepted)} agree"
                + (f"; e.g. {wrong[:3]}" if wrong else ""),
            )
        )

        mismatched: list[str] = []

        def feeds_match() -> bool:
            mismatched.clear()
            for a in self.accepted:
                case = self.case_of(a.report_id) or {}
                if self._feed(a) != self._expected_feed(a, case):
                    mismatched.append(a.report_id)
            return not mismatched

        wait_until(feeds_match, self.settle_timeout, 2.0)
        detail = f"{len(self.accepted) - len(mismatched)}/{len(self.accepted)} reporters"
        if mismatched:
            a = next(x for x in self.accepted if x.report_id == mismatched[0])
            detail += (
                f"; e.g. {a.report_id}: got {dict(self._feed(a))}, expected "
                f"{dict(self._expected_feed(a, self.case_of(a.report_id) or {}))}"
            )
        s.checks.append(
            Check("every change reached its reporter exactly once", not mismatched, detail)
        )

        cities = (
            "jakarta-pusat",
            "jakarta-utara",
            "jakarta-barat",
            "jakarta-selatan",
            "jakarta-timur",
        )
        recount = Counter(a.plan.district_id.split(".")[0] for a in self.accepted)

        added: dict[str, int] = {}

        def count_added() -> dict[str, int]:
            now = self.analytics_totals()
            return {c: now[c] - self.analytics_before.get(c, 0) for c in cities}

        wait_until(
            lambda: (
                (added.update(count_added()) or True)
                and all(added[c] == recount.get(c, 0) for c in cities)
            ),
            self.settle_timeout,
            1.0,
        )
        s.checks.append(
            Check(
                "analytics counted this day's reports (a recount)",
                all(added.get(c) == recount.get(c, 0) for c in cities),
                ", ".join(f"{c.split('-')[1]} +{added.get(c)}/{recount.get(c, 0)}" for c in cities),
            )
        )

        s.checks += self._citizens_checks()
        breach_counts = self._breach_checks(s)

        resolved_routing = sum(
            1
            for c in cases.values()
            if c and not c.get("duplicate_of") and c["status"] == "resolved"
        )
        dead = self.dead_letters() - self.dead_letters_before
        s.checks.append(Check("no dead letters", dead == 0, f"{dead:.0f} dead-lettered records"))
        s.checks.append(
            Check(
                "bad requests refused, nothing else failed",
                not self.unexpected,
                f"{sum(self.refused.values())} refused as planned"
                + (f"; unexpected: {self.unexpected[:3]}" if self.unexpected else ""),
            )
        )
        deliveries = (
            self._metric_sum(self.e.notify, "jembatan_notify_deliveries_total")
            - self.deliveries_before
        )
        s.counts = {
            "reports planned": len(self.day.reports),
            "reports accepted": len(self.accepted),
            "bad requests refused (422)": sum(self.refused.values()),
            "retries answered with the same report": self.retries_same_id,
            "submissions told to wait (429), then sent again": self.rate_limited,
            "cases (originals)": sum(1 for c in cases.values() if c and not c.get("duplicate_of")),
            "duplicates linked": statuses.get("duplicate", 0),
            "cases by status": dict(
                sorted((k, v) for k, v in statuses.items() if k not in ("duplicate", "missing"))
            ),
            "cases resolved": resolved_routing,
            "agency actions": dict(sorted(self.actions.items())),
            "notifications delivered": int(deliveries),
            "dead letters": int(dead),
            "reports with answers to the category's questions": sum(
                1 for a in self.accepted if a.answers
            ),
            "reports with the citizen's photo": sum(1 for a in self.accepted if a.photo),
            '"me too" said (repeats answered as already said)': (
                f"{sum(len(a.supported_by) for a in self.accepted)} ({self.supports_repeated})"
            ),
            "supporters asking to be told when fixed": sum(len(a.followers) for a in self.accepted),
            "fixes told to them (deliveries their app received)": sum(
                1
                for a in self.accepted
                for supporter in a.followers
                for d in self.followers.of(supporter)
                if d.event_type == "case.resolved"
            ),
            **(
                {
                    "supporters who could not follow (notify refuses this machine as a "
                    "webhook target: JEMBATAN_NOTIFY_WEBHOOK_ALLOWED_NETWORKS)": self.follow_refused
                }
                if self.follow_refused
                else {}
            ),
            **breach_counts,
        }
        r = self.http.get(f"{self.e.analytics}/v1/league/districts")
        if r.status_code == 200:
            body = r.json()
            s.league = list(body.get("ranked") or [])
            if not s.league:
                s.league = list(body.get("unranked") or [])
                s.league_provisional = bool(s.league)
        return s

    def _citizens_checks(self) -> list[Check]:
        """What citizens attached and said reached every service that keeps it."""
        checks: list[Check] = []
        private = {
            category: {a["code"] for a in attrs if a.get("private")}
            for category, attrs in self.definitions.items()
        }
        answered = [a for a in self.accepted if a.answers]
        wrong: list[str] = []
        for a in answered:
            case = self.case_of(a.report_id) or {}
            public = self.http.get(f"{self.e.intake}/v1/reports/{a.report_id}").json()
            shown = {
                k: v for k, v in a.answers.items() if k not in private.get(a.plan.category, ())
            }
            if case.get("attributes") != a.answers or public.get("attributes") != shown:
                wrong.append(f"{a.report_id}: sent {a.answers}, case {case.get('attributes')}")
        checks.append(
            tally(
                "answers reached the agency unchanged (private ones only there)",
                len(answered),
                wrong,
                "reports",
            )
        )

        with_photo = [a for a in self.accepted if a.photo]
        missing: list[str] = []
        for a in with_photo:
            photos = self.http.get(f"{self.e.intake}/v1/reports/{a.report_id}").json()["photos"]
            mine = [m for m in photos if m["media_id"] == a.photo]
            # its public URL is on intake's public base (a proxy, maybe): fetch it here
            served = mine and self.http.get(f"{self.e.intake}/v1/media/{a.photo}")
            if (
                not served
                or served.status_code != 200
                or not served.headers.get("content-type", "").startswith("image/")
            ):
                missing.append(a.report_id)
        checks.append(
            tally("citizens' photos are attached and served", len(with_photo), missing, "reports")
        )

        supported = [a for a in self.accepted if a.supported_by]

        def miscounted() -> list[str]:
            out = []
            for a in supported:
                public = self.http.get(f"{self.e.intake}/v1/reports/{a.report_id}").json()
                case = self.case_of(a.report_id) or {}
                n = len(a.supported_by)
                dups = len(case.get("duplicate_ids") or [])
                if (public.get("supporters"), case.get("supporters"), case.get("affected")) != (
                    n,
                    n,
                    1 + n + dups,
                ):
                    out.append(
                        f"{a.report_id}: sent {n}, public {public.get('supporters')}, "
                        f"agency {case.get('supporters')} (affected {case.get('affected')})"
                    )
            return out

        checks.append(
            self._settles(
                '"me too" counted once per supporter (public view and agency queue)',
                len(supported),
                miscounted,
                "reports",
            )
        )
        said = Counter({c: 0 for c in CITIES})
        for a in supported:
            said[a.plan.district_id.split(".")[0]] += len(a.supported_by)
        added: Counter[str] = Counter()

        def analytics_agrees() -> bool:
            now = self.analytics_supporters()
            added.clear()
            added.update({c: now[c] - self.supporters_before[c] for c in CITIES})
            return all(added[c] == said[c] for c in CITIES)

        wait_until(analytics_agrees, self.settle_timeout, 1.0)
        checks.append(
            Check(
                'analytics counted the day\'s "me too" (people affected)',
                all(added[c] == said[c] for c in CITIES),
                ", ".join(f"{c.split('-')[1]} +{added[c]}/{said[c]}" for c in CITIES),
            )
        )

        following = [(a, sid, secret) for a in self.accepted for sid, secret in a.followers.items()]

        def untold() -> list[str]:
            out = []
            for a, supporter, secret in following:
                case = self.case_of(a.report_id) or {}
                fixes = sum(1 for h in case.get("history", []) if h["type"] == "case.resolved")
                got = self.followers.of(supporter)
                told = [d for d in got if d.event_type == "case.resolved"]
                if (
                    len(told) != fixes
                    or len({d.event_id for d in got}) != len(got)
                    or not all(d.signed_by(secret) for d in got)
                ):
                    out.append(f"{a.report_id}: fixed {fixes}x, told {len(told)}x")
            return out

        checks.append(
            self._settles(
                "supporters who asked were told once per fix (signed, no repeats)",
                len(following),
                untold,
                "supporters",
            )
        )
        return checks

    def _settles(
        self, name: str, total: int, failures_now: Callable[[], list[str]], noun: str
    ) -> Check:
        """A check that may need the ecosystem to settle: asked again until nothing fails
        or the settle timeout passes."""
        failures: list[str] = []

        def holds() -> bool:
            failures[:] = failures_now()
            return not failures

        wait_until(holds, self.settle_timeout, 1.0)
        return tally(name, total, failures, noun)

    def _breach_checks(self, s: Summary) -> dict[str, Any]:
        """Routing announced the breaches the day expected; analytics and its league
        counted at least this day's (earlier days' open cases may breach meanwhile)."""
        recorded: dict[str, set[str]] = {d: set() for d in DEADLINES}

        def routing_recorded() -> bool:
            for d in DEADLINES:
                recorded[d].clear()
            for a in self.accepted:
                for d in self.breached(self.case_of(a.report_id)):
                    recorded.setdefault(d, set()).add(a.report_id)
            return all(self.expected_breaches[d] <= recorded[d] for d in DEADLINES)

        wait_until(routing_recorded, self.settle_timeout, 1.0)
        missed = {d: sorted(self.expected_breaches[d] - recorded[d]) for d in DEADLINES}
        s.checks.append(
            Check(
                "deadlines of cases left waiting were breached (routing)",
                not any(missed.values()),
                ", ".join(
                    f"{d} {len(self.expected_breaches[d]) - len(missed[d])}"
                    f"/{len(self.expected_breaches[d])}"
                    for d in DEADLINES
                )
                + (f"; not announced: {missed}" if any(missed.values()) else ""),
            )
        )
        counted: Counter[str] = Counter()
        league: Counter[str] = Counter()

        def analytics_counted() -> bool:
            now, table = self.analytics_breaches(), self.league_breaches()
            for d in DEADLINES:
                counted[d] = now[d] - self.breaches_before[d]
                league[d] = table[d] - self.league_breaches_before[d]
            return all(
                counted[d] >= len(recorded[d]) and league[d] == counted[d] for d in DEADLINES
            )

        ok = wait_until(analytics_counted, self.settle_timeout, 1.0)
        s.checks.append(
            Check(
                "analytics and the league counted the day's breaches",
                ok,
                ", ".join(
                    f"{d}: routing {len(recorded[d])}, analytics +{counted[d]}, league +{league[d]}"
                    for d in DEADLINES
                ),
            )
        )
        return {
            "SLA breaches expected (cases left waiting)": {
                d: len(self.expected_breaches[d]) for d in DEADLINES
            },
            "SLA breaches announced by routing (this day's cases)": {
                d: len(recorded[d]) for d in DEADLINES
            },
            "SLA breaches counted by analytics during the day": dict(counted),
        }

    def run(self) -> Summary:
        start = time.monotonic()
        with self.followers.running():
            self.setup()
            self.submit_all()
            self.wait_routed()
            self.support_all()
            self.work_cases()
            self.await_deadlines()
            summary = self.reconcile()
        for what, n in sorted(self.through_pages.items()):
            summary.counts[f"through the pages: {what}"] = n
        for officer in self.officers.values():
            officer.close()
        summary.seconds = time.monotonic() - start
        return summary


def district_shapes(
    geojson: Path,
) -> Iterable[tuple[str, tuple[float, float, float, float], Callable[[float, float], bool]]]:
    from services.intake.domain.geo import DistrictLocator

    locator = DistrictLocator.from_file(geojson)
    return [(d.id, d.bbox, d.contains) for d in locator.districts]
