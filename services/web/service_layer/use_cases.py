"""What people do on the pages, as use cases over the public APIs: send a report, give
feedback on it, act on a case. The routes only parse the request and render the outcome.

Each use case either succeeds or raises ``Refused`` with message keys by field (the page
shows them in the reader's language and keeps what was typed), ``Busy`` (intake asked to
wait; the same Idempotency-Key goes again), ``Conflict`` (someone changed the case first)
or ``Missing``. ``Unavailable`` from the adapters passes through: nothing was accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.web.adapters.sessions import AgencySession
from services.web.adapters.upstream import Upstream, Upstreams
from services.web.domain import forms
from services.web.service_layer.catalogue import Catalogue

UPSTREAM_FIELD = {  # intake's field names -> the report form's
    "location": "lat",
    "location.lat": "lat",
    "location.lon": "lon",
    "contact.email": "email",
    "contact.phone": "phone",
    "contact.name": "name",
    "photos": "photo",
}


@dataclass(frozen=True)
class Photo:
    data: bytes
    filename: str
    content_type: str


class Refused(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class Busy(Exception):
    def __init__(self, retry_after: str) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class Conflict(Exception):
    pass


class Missing(Exception):
    pass


def _photo_refusal(exc: Upstream) -> str:
    return "err_photo_size" if exc.status == 413 else "err_photo_type"


class Reporting:
    """Citizens: a report (photo first, then the report with its Idempotency-Key) and the
    reporter's feedback with the tracking code."""

    def __init__(self, up: Upstreams, catalogue: Catalogue) -> None:
        self.up = up
        self.catalogue = catalogue

    def upload_photo(self, photo: Photo | None, client_ip: str) -> str:
        problem = "err_required" if photo is None else forms.photo_error(photo.data)
        if photo is None or problem:
            raise Refused({"photo": problem or "err_required"})
        try:
            ref = self.up.upload_photo(photo.data, photo.filename, photo.content_type, client_ip)
        except Upstream as exc:
            raise Refused({"photo": _photo_refusal(exc)}) from None
        return ref["media_id"]

    def send(self, form: forms.ReportForm, photo: Photo | None, client_ip: str) -> tuple[str, str]:
        """(report id, tracking token). A photo already uploaded (``form.media_id``) is not
        sent again, so a resend is the same body under the same key."""
        errors = form.validate(self.catalogue.category_ids())
        if photo is not None and not form.media_id:
            problem = forms.photo_error(photo.data)
            if problem:
                errors["photo"] = problem
        if errors:
            raise Refused(errors)
        if photo is not None and not form.media_id:
            form.media_id = self.upload_photo(photo, client_ip)
        try:
            out = self.up.submit(form.payload(), form.idempotency_key, client_ip)
        except Upstream as exc:
            if exc.status == 429:
                raise Busy(exc.retry_after or "5") from None
            if exc.code == "outside_service_area":
                raise Refused({"lat": "err_outside"}) from None
            if exc.code == "idempotency_key_reused":
                raise Refused({"form": "err_reused"}) from None
            fields = {UPSTREAM_FIELD.get(f, f): "err_invalid" for f in exc.fields}
            raise Refused(fields or {"form": "err_invalid"}) from None
        return str(out["report"]["id"]), str(out["tracking_token"])

    def feedback(self, report_id: str, fields: dict[str, str]) -> None:
        token = fields.get("token", "").strip()
        fb, errors = forms.Feedback.parse(fields)
        if not token:
            errors["token"] = "err_token"
        if fb is None or errors:
            raise Refused(errors)
        try:
            self.up.feedback(report_id, token, fb.payload())
        except Upstream as exc:
            if exc.status == 404:
                raise Missing(report_id) from None
            if exc.status in (401, 403):
                raise Refused({"token": "err_token"}) from None
            if exc.status == 409:
                raise Refused({"kind": "err_not_allowed"}) from None
            field = "reason" if "reason" in exc.fields else "kind"
            raise Refused({field: "err_invalid"}) from None


class CaseWork:
    """Officers: one action on a case, with the version they saw."""

    def __init__(self, up: Upstreams) -> None:
        self.up = up

    def act(
        self,
        session: AgencySession,
        case_id: str,
        action: str,
        values: dict[str, str],
        photo: Photo | None,
        client_ip: str,
    ) -> None:
        errors = forms.case_action_errors(action, values, photo is not None)
        if photo is not None and not errors:
            problem = forms.photo_error(photo.data)
            if problem:
                errors = {"evidence": problem}
        if errors:
            raise Refused(errors)
        try:
            version: int | None = int(values.get("version", ""))
        except ValueError:
            version = None
        body: dict[str, Any] = {"version": version}
        note = values.get("note", "").strip()
        if action in ("acknowledge", "start") and note:
            body["note"] = note
        if action in ("reject", "transfer"):
            body["reason"] = values["reason"].strip()
        if action == "transfer":
            body["to_agency_id"] = values["to_agency_id"].strip()
        if action == "resolve" and photo is not None:
            try:
                ref = self.up.upload_photo(
                    photo.data, photo.filename, photo.content_type, client_ip
                )
            except Upstream as exc:
                raise Refused({"evidence": _photo_refusal(exc)}) from None
            body["note"] = note
            body["media"] = [ref]
        try:
            self.up.act(session.agency_key, case_id, action, body)
        except Upstream as exc:
            if exc.status == 409:
                raise Conflict(case_id) from None
            if exc.status == 404:
                raise Missing(case_id) from None
            fields = {k.split(".")[0]: "err_invalid" for k in exc.fields}
            raise Refused(fields or {"form": "err_invalid"}) from None
