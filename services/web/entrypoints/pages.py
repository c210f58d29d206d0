"""The pages: thin routes that parse a form, call the public APIs, and render HTML.

Every page works without JavaScript; scripts only add maps, photo previews, drafts
kept through network drops and the tracking code kept in the browser. Errors render
as pages in the reader's language; a state-changing form is refused without its CSRF
token. Secrets never travel in a URL: the tracking code and the agency key are form
fields (POST bodies) that go upstream in headers.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData, UploadFile

from services.web.adapters.sessions import AgencySession, SessionStore
from services.web.adapters.upstream import Unavailable, Upstream, Upstreams
from services.web.domain import forms, i18n
from services.web.service_layer.catalogue import Catalogue, readable
from services.web.service_layer.use_cases import (
    Busy,
    CaseWork,
    Conflict,
    Missing,
    Photo,
    Refused,
    Reporting,
)

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
BROWSER_COOKIE = "jb_browser"
SESSION_COOKIE = "jb_session"
LANG_COOKIE = "jb_lang"
REPORT_STATUSES = ("routed", "acknowledged", "in_progress", "resolved", "rejected", "closed")
SUBSCRIPTION_ACTIONS = ("confirm", "unsubscribe")
CASE_STATUSES = ("routed", "acknowledged", "in_progress", "resolved", "rejected")


class CsrfRefused(Exception):
    pass


class SignInRequired(Exception):
    """An agency page without a live session: the handler sends the browser to sign in."""


@dataclass
class PageContext:
    secret: bytes
    secure_cookies: bool
    tile_url: str
    sessions: SessionStore
    up: Upstreams
    catalogue: Catalogue
    reporting: Reporting
    cases: CaseWork


def _fmt_time(value: str | None, lang: str) -> str:
    if not value:
        return "—"
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    local = dt.astimezone(UTC).replace(tzinfo=None)
    return local.strftime("%d-%m-%Y %H:%M UTC" if lang == "id" else "%Y-%m-%d %H:%M UTC")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.autoescape = True
    env.filters["when"] = _fmt_time
    env.filters["percent"] = _percent
    env.globals["readable"] = readable
    return templates


class Pages:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.templates = build_templates()

    # --- helpers ----------------------------------------------------------------------------
    def lang(self, request: Request) -> str:
        return i18n.choose(
            request.headers.get("accept-language"),
            request.query_params.get("lang") or request.cookies.get(LANG_COOKIE),
        )

    def browser_id(self, request: Request) -> str:
        existing = request.cookies.get(BROWSER_COOKIE, "")
        if 20 <= len(existing) <= 100:
            return existing
        new = getattr(request.state, "new_browser_id", None)
        if not new:
            new = secrets.token_urlsafe(24)
            request.state.new_browser_id = new
        return str(new)

    def session(self, request: Request) -> AgencySession | None:
        return self.ctx.sessions.get(request.cookies.get(SESSION_COOKIE))

    def officer(self, request: Request, role: str = "agency") -> AgencySession:
        session = self.session(request)
        if session is None or session.role != role:
            raise SignInRequired()
        return session

    def render(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        lang = self.lang(request)
        browser = self.browser_id(request)
        names = self.ctx.catalogue.names(lang)
        path_q = request.url.path
        switch = "en" if lang == "id" else "id"
        params = {k: v for k, v in request.query_params.items() if k != "lang"}
        params["lang"] = switch
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "lang": lang,
                "t": lambda key, **kw: (
                    i18n.text(lang, key).format(**kw) if kw else i18n.text(lang, key)
                ),
                "status_name": lambda s: i18n.status_name(lang, s or ""),
                "names": names,
                "csrf": forms.csrf_token(self.ctx.secret, browser),
                "switch_url": f"{path_q}?{urlencode(params)}",
                "switch_lang": switch,
                "signed_in": self.session(request) is not None,
                "tile_url": self.ctx.tile_url,
                **values,
            },
            status_code=status,
        )
        self._cookies(request, response, lang)
        return response

    def _cookies(self, request: Request, response: Response, lang: str | None = None) -> None:
        new = getattr(request.state, "new_browser_id", None)
        if new:
            response.set_cookie(
                BROWSER_COOKIE,
                new,
                max_age=365 * 86400,
                httponly=True,
                samesite="strict",
                secure=self.ctx.secure_cookies,
            )
        chosen = request.query_params.get("lang")
        if lang and chosen in i18n.LANGUAGES:
            response.set_cookie(
                LANG_COOKIE,
                chosen,
                max_age=365 * 86400,
                samesite="lax",
                secure=self.ctx.secure_cookies,
            )

    async def form(self, request: Request) -> FormData:
        """The posted form, refused (CsrfRefused) without this browser's CSRF token."""
        data = await request.form(max_files=2, max_fields=40)
        token = str(data.get("csrf") or request.headers.get("x-csrf-token") or "")
        if not forms.csrf_ok(self.ctx.secret, request.cookies.get(BROWSER_COOKIE), token):
            raise CsrfRefused()
        return data

    @staticmethod
    def fields(data: FormData) -> dict[str, str]:
        return {k: v for k, v in data.items() if isinstance(v, str)}

    @staticmethod
    async def upload(data: FormData, name: str) -> Photo | None:
        item = data.get(name)
        if not isinstance(item, UploadFile) or not item.filename:
            return None
        raw = await item.read(forms.MAX_PHOTO_BYTES + 1)
        return Photo(raw, item.filename, item.content_type or "") if raw else None

    @staticmethod
    def client_ip(request: Request) -> str:
        """X-Forwarded-For for intake's per-client rate limit: the chain the pages were
        given (by the ingress) and the peer they saw, so citizens never share one bucket."""
        peer = request.client.host if request.client else "unknown"
        chain = request.headers.get("x-forwarded-for", "").strip()
        return f"{chain}, {peer}" if chain else peer

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """An upstream call in a thread: the blocking client never stalls the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    # --- citizens: report -------------------------------------------------------------------
    def report_page(
        self, request: Request, form: forms.ReportForm, status: int = 200, note: str = ""
    ) -> HTMLResponse:
        lang = self.lang(request)
        return self.render(
            request,
            "report.html",
            status,
            form=form,
            categories=self.ctx.catalogue.categories(lang),
            note=note,
        )

    async def submit_report(self, request: Request) -> Response:
        wants_json = "application/json" in request.headers.get("accept", "")
        data = await self.form(request)
        form = forms.ReportForm.from_fields(self.fields(data))
        photo = await self.upload(data, "photo")
        lang = self.lang(request)
        status, headers = 422, {}
        try:
            report_id, token = await self.run(
                self.ctx.reporting.send, form, photo, self.client_ip(request)
            )
        except Refused as exc:
            form.errors = exc.errors
        except Busy as exc:  # the same key goes again after Retry-After
            form.errors, status, headers = (
                {"form": "err_rate"},
                429,
                {"Retry-After": exc.retry_after},
            )
        except Unavailable as exc:
            log.warning("report not sent: %s", exc)
            form.errors, status, headers = {"form": "err_unavailable"}, 503, {"Retry-After": "5"}
        else:
            if wants_json:
                return JSONResponse(
                    {
                        "report_id": report_id,
                        "tracking_token": token,
                        "url": f"/reports/{report_id}",
                    },
                    status_code=201,
                )
            return self.render(
                request, "created.html", 201, report_id=report_id, tracking_token=token
            )
        if wants_json:
            errors = {k: i18n.text(lang, v) for k, v in form.errors.items()}
            return JSONResponse(
                {"errors": errors, "media_id": form.media_id}, status_code=status, headers=headers
            )
        response = self.report_page(request, form, status)
        response.headers.update(headers)
        return response

    async def upload_photo(self, request: Request) -> Response:
        """The script's first step: the photo alone, so a retried submission resends its id."""
        data = await self.form(request)
        photo = await self.upload(data, "photo")
        try:
            media_id = await self.run(
                self.ctx.reporting.upload_photo, photo, self.client_ip(request)
            )
        except Refused as exc:
            lang = self.lang(request)
            return JSONResponse(
                {"errors": {k: i18n.text(lang, v) for k, v in exc.errors.items()}}, 422
            )
        return JSONResponse({"media_id": media_id}, 201)

    # --- citizens: tracking -------------------------------------------------------------------
    async def tracking_page(
        self,
        request: Request,
        report_id: str,
        status: int = 200,
        errors: dict[str, str] | None = None,
        typed: dict[str, str] | None = None,
        done: bool = False,
    ) -> HTMLResponse:
        if not forms.REPORT_ID.match(report_id):
            return await self.not_found(request)
        try:
            report = await self.run(self.ctx.up.report, report_id)
        except Upstream as exc:
            if exc.status == 404:
                return await self.not_found(request)
            raise
        timeline = [
            {**t, "label": i18n.status_name(self.lang(request), t.get("type", ""))}
            for t in report.get("timeline") or []
        ]
        return self.render(
            request,
            "track.html",
            status,
            report=report,
            timeline=timeline,
            errors=errors or {},
            typed=typed or {},
            done=done,
        )

    async def feedback(self, request: Request, report_id: str) -> Response:
        fields = self.fields(await self.form(request))
        typed = {"reason": fields.get("reason", ""), "rating": fields.get("rating", "")}
        try:
            await self.run(self.ctx.reporting.feedback, report_id, fields)
        except Refused as exc:
            return await self.tracking_page(request, report_id, 422, exc.errors, typed)
        except Missing:
            return await self.not_found(request)
        return RedirectResponse(f"/reports/{report_id}?done=1", status_code=303)

    # --- subscriptions (links in emails) ------------------------------------------------------
    async def subscription(self, request: Request, action: str) -> Response:
        token = request.query_params.get("token", "")
        return self.render(request, "subscription.html", action=action, token=token, outcome="")

    async def subscription_post(self, request: Request, action: str) -> Response:
        raw = await request.form(max_files=0, max_fields=10)
        if action == "unsubscribe" and raw.get("List-Unsubscribe") == "One-Click":
            # RFC 8058: a mail client's one-click POST to the link itself; the link's
            # token is the authority (no browser session involved, so no CSRF token)
            token = request.query_params.get("token", "")
            try:
                await self.run(self.ctx.up.unsubscribe, token)
            except Upstream:
                return Response(status_code=400)
            return Response(status_code=200)
        data = self.fields(await self.form(request))
        token = data.get("token", "")
        fn = self.ctx.up.confirm_subscription if action == "confirm" else self.ctx.up.unsubscribe
        try:
            await self.run(fn, token)
            outcome = "sub_confirmed" if action == "confirm" else "sub_unsubscribed"
            status = 200
        except Upstream:
            outcome, status = "sub_bad_link", 400
        return self.render(
            request, "subscription.html", status, action=action, token="", outcome=outcome
        )

    # --- agencies ---------------------------------------------------------------------------
    async def signin(self, request: Request) -> Response:
        data = self.fields(await self.form(request))
        key = data.get("key", "").strip()
        try:
            who = await self.run(self.ctx.up.whoami, key) if key else None
        except Upstream:
            who = None
        if not who or who.get("role", "agency") not in ("agency", "operator"):
            return self.render(request, "agency_signin.html", 401, error="err_key")
        role = str(who.get("role", "agency"))
        sid = self.ctx.sessions.create(key, str(who.get("subject") or who["agency_id"]), role)
        home = "/agency/cases" if role == "agency" else "/operator"
        response = RedirectResponse(home, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            sid,
            max_age=int(self.ctx.sessions.ttl),
            httponly=True,
            samesite="strict",
            secure=self.ctx.secure_cookies,
            path="/",
        )
        self._cookies(request, response)
        return response

    async def signout(self, request: Request) -> Response:
        await self.form(request)
        self.ctx.sessions.drop(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/agency", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def queue(self, request: Request, session: AgencySession) -> Response:
        q = request.query_params
        status = q.get("status", "")
        filters = {
            "status": status if status in CASE_STATUSES else "",
            "district_id": q.get("district_id", "")[:100],
            "category": q.get("category", "")[:100],
            "overdue": "true" if q.get("overdue") == "true" else "",
        }
        page = await self.run(self.ctx.up.queue, session.agency_key, limit=100, **filters)
        geo = await self.run(self.ctx.catalogue.geography)
        return self.render(
            request,
            "queue.html",
            cases=page["items"],
            total=page["total"],
            filters=filters,
            statuses=CASE_STATUSES,
            districts=sorted(geo["districts"], key=lambda d: d["name"]),
            categories=self.ctx.catalogue.categories(self.lang(request)),
            agency_id=session.agency_id,
        )

    async def case_page(
        self,
        request: Request,
        session: AgencySession,
        case_id: str,
        status: int = 200,
        errors: dict[str, str] | None = None,
        message: str = "",
        typed: dict[str, str] | None = None,
    ) -> Response:
        try:
            case = await self.run(self.ctx.up.case, session.agency_key, case_id)
        except Upstream as exc:
            if exc.status == 404:
                return await self.not_found(request)
            raise
        try:
            report = await self.run(self.ctx.up.report, case["report_id"])
        except Upstream:
            report = {}
        offered = [a for a in forms.OFFERED.get(case["status"], ()) if a in case["allowed_actions"]]
        return self.render(
            request,
            "case.html",
            status,
            case=case,
            report=report,
            offered=offered,
            agencies=[a for a in self.ctx.catalogue.agencies() if a["id"] != session.agency_id],
            errors=errors or {},
            message=message,
            typed=typed or {},
            agency_id=session.agency_id,
        )

    async def case_action(
        self, request: Request, session: AgencySession, case_id: str, action: str
    ) -> Response:
        data = await self.form(request)
        values = self.fields(data)
        photo = await self.upload(data, "evidence")
        typed = {k: values.get(k, "") for k in ("note", "reason", "to_agency_id")}
        try:
            await self.run(
                self.ctx.cases.act, session, case_id, action, values, photo, self.client_ip(request)
            )
        except Refused as exc:
            return await self.case_page(request, session, case_id, 422, exc.errors, typed=typed)
        except Conflict:  # the page says so and shows the new state
            return await self.case_page(
                request, session, case_id, 409, message="conflict", typed=typed
            )
        except Missing:
            return await self.not_found(request)
        if action == "transfer":  # no longer this agency's case
            return RedirectResponse("/agency/cases?done=1", status_code=303)
        return RedirectResponse(f"/agency/cases/{case_id}?done=1", status_code=303)

    async def operator_page(self, request: Request, session: AgencySession) -> Response:
        """Reports no rule could route, and the rules in force (editing comes later)."""
        unrouted = await self.run(self.ctx.up.unrouted, session.agency_key)
        rules = await self.run(self.ctx.up.rules, session.agency_key)
        return self.render(
            request,
            "operator.html",
            unrouted=unrouted,
            rules=rules["items"],
            version=rules["version"],
            agency_id=session.agency_id,
        )

    # --- the public -------------------------------------------------------------------------
    async def city(self, request: Request) -> Response:
        districts = await self.run(self.ctx.up.league, "districts")
        agencies = await self.run(self.ctx.up.league, "agencies")
        return self.render(request, "city.html", districts=districts, agencies=agencies)

    async def district(self, request: Request, district_id: str) -> Response:
        geo = await self.run(self.ctx.catalogue.geography)
        known = {d["id"]: d for d in geo["districts"]}
        if district_id not in known:
            return await self.not_found(request)
        q = request.query_params
        status = q.get("status", "")
        category = q.get("category", "")
        cats = self.ctx.catalogue.categories(self.lang(request))
        filters = {
            "status": status if status in REPORT_STATUSES else "",
            "category": category if category in {c["id"] for c in cats} else "",
        }
        page = await self.run(
            self.ctx.up.reports,
            district_id=district_id,
            status=filters["status"],
            category=filters["category"],
            limit=50,
            cursor=q.get("cursor", "")[:500] or None,
        )
        metrics = await self.run(self.ctx.up.district_metrics, district_id)
        trend = await self.run(self.ctx.up.trends, district_id)
        next_params = {k: v for k, v in filters.items() if v}
        if page.get("next_cursor"):
            next_params["cursor"] = page["next_cursor"]
        return self.render(
            request,
            "district.html",
            district=known[district_id],
            reports=page["items"],
            next_url=(
                f"/districts/{district_id}?{urlencode(next_params)}"
                if page.get("next_cursor")
                else ""
            ),
            metrics=metrics["metrics"],
            windows=(trend.get("windows") or [])[-14:],
            filters=filters,
            statuses=REPORT_STATUSES,
            categories=cats,
        )

    async def map_data(self, league: bool) -> Response:
        """District polygons (cached long: they rarely change); with ``league`` each one
        carries its SLA compliance, for the city map (cached briefly)."""
        shapes = await self.run(self.ctx.up.district_shapes)
        if not league:
            return JSONResponse(shapes, headers={"Cache-Control": "public, max-age=3600"})
        table = await self.run(self.ctx.up.league, "districts")
        compliance = {
            row["id"]: row.get("sla_compliance")
            for row in table.get("ranked", []) + table.get("unranked", [])
        }
        for feature in shapes.get("features", []):
            props = feature.setdefault("properties", {})
            props["sla_compliance"] = compliance.get(props.get("district_id"))
        return JSONResponse(shapes, headers={"Cache-Control": "public, max-age=30"})

    async def not_found(self, request: Request) -> HTMLResponse:
        return self.render(request, "error.html", 404, title="not_found_title", message="")


def build_router(pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    p = pages

    @router.get("/")
    async def home(request: Request) -> Response:
        return p.report_page(request, forms.ReportForm(idempotency_key=forms.new_key()))

    # forms whose whole handling is one method of Pages
    router.add_api_route("/report", p.submit_report, methods=["POST"])
    router.add_api_route("/report/photo", p.upload_photo, methods=["POST"])
    router.add_api_route("/agency/signin", p.signin, methods=["POST"])
    router.add_api_route("/agency/signout", p.signout, methods=["POST"])

    @router.get("/track")
    async def track(request: Request) -> Response:
        report_id = request.query_params.get("id", "").strip().upper()
        if report_id and forms.REPORT_ID.match(report_id):
            return RedirectResponse(f"/reports/{report_id}", status_code=303)
        return p.render(request, "track_find.html", typed=report_id)

    @router.get("/reports/{report_id}")
    async def tracking(request: Request, report_id: str) -> Response:
        return await p.tracking_page(request, report_id, done="done" in request.query_params)

    @router.post("/reports/{report_id}/feedback")
    async def feedback(request: Request, report_id: str) -> Response:
        return await p.feedback(request, report_id)

    @router.get("/subscriptions/{action}")
    async def subscription(request: Request, action: str) -> Response:
        if action not in SUBSCRIPTION_ACTIONS:
            return await p.not_found(request)
        return await p.subscription(request, action)

    @router.post("/subscriptions/{action}")
    async def subscription_post(request: Request, action: str) -> Response:
        if action not in SUBSCRIPTION_ACTIONS:
            return await p.not_found(request)
        return await p.subscription_post(request, action)

    @router.get("/media/{media_id}")
    async def media(media_id: str) -> Response:
        if not forms.MEDIA_ID.match(media_id):
            return Response(status_code=404)
        try:
            r = await p.run(p.ctx.up.media, media_id)
        except Upstream:
            return Response(status_code=404)
        return Response(
            r.content,
            media_type=r.headers.get("content-type", "application/octet-stream"),
            headers={"Cache-Control": "public, max-age=86400, immutable"},
        )

    @router.get("/agency")
    async def agency(request: Request) -> Response:
        session = p.session(request)
        if session:
            home = "/agency/cases" if session.role == "agency" else "/operator"
            return RedirectResponse(home, status_code=303)
        return p.render(request, "agency_signin.html", error="")

    @router.get("/agency/cases")
    async def queue(request: Request) -> Response:
        return await p.queue(request, p.officer(request))

    @router.get("/agency/cases/{case_id}")
    async def case(request: Request, case_id: str) -> Response:
        done = "done" in request.query_params
        message = "action_done" if done else ""
        return await p.case_page(request, p.officer(request), case_id, message=message)

    @router.post("/agency/cases/{case_id}/{action}")
    async def case_action(request: Request, case_id: str, action: str) -> Response:
        session = p.officer(request)
        if action not in forms.CASE_ACTIONS:
            return await p.not_found(request)
        return await p.case_action(request, session, case_id, action)

    @router.get("/operator")
    async def operator(request: Request) -> Response:
        return await p.operator_page(request, p.officer(request, "operator"))

    @router.get("/city")
    async def city(request: Request) -> Response:
        return await p.city(request)

    @router.get("/districts/{district_id}")
    async def district(request: Request, district_id: str) -> Response:
        return await p.district(request, district_id)

    @router.get("/map/districts.geojson")
    async def map_shapes() -> Response:
        return await p.map_data(league=False)

    @router.get("/map/league.geojson")
    async def map_league() -> Response:
        return await p.map_data(league=True)

    return router
