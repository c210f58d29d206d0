"""Attack: one report whose text holds a character XML cannot carry (U+0001, say) makes
the Open311 answer for it, and the listing every client reads, unparseable.

A property test over arbitrary Unicode (control characters and lone surrogates included)
on the renderer, then the running intake: a stored report with hostile characters, read
back through Open311 XML and JSON by a real parser."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.entrypoints.open311_format import json_safe, render, xml_text
from tests.security.conftest import Running

ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60)
HOSTILE = "nol\x00 satu\x01 tab\t cr\r lf\n vt\x0b ff\x0c esc\x1b fffe\ufffe ffff\uffff <&>\"'"


def _xml_read(text: str) -> str:
    """What a conforming XML parser gives back for a text node (line ends normalised)."""
    return xml_text(text).replace("\r\n", "\n").replace("\r", "\n")


@settings(max_examples=300, deadline=None)
@given(description=ANY_TEXT, address=ANY_TEXT, note=ANY_TEXT)
def test_any_stored_text_renders_well_formed(description: str, address: str, note: str) -> None:
    item: dict[str, Any] = {
        "service_request_id": "JKT-1",
        "description": description,
        "address": address,
        "status_notes": note,
        "media_url": None,
        "lat": -6.2,
    }
    xml = render("xml", "service_requests", "request", [item, item]).body
    root = ET.fromstring(xml)  # raises on anything not well-formed
    got = root.findall("request")
    assert len(got) == 2
    assert (got[0].findtext("description") or "") == _xml_read(description)
    assert (got[1].findtext("address") or "") == _xml_read(address)

    body = render("json", "service_requests", "request", [item]).body
    parsed = json.loads(bytes(body).decode("utf-8"))  # valid UTF-8 and valid JSON
    assert parsed[0]["status_notes"] == json_safe(note)


def test_the_running_intake_answers_parseable_open311_for_hostile_text(running: Running) -> None:
    rid = running.submit(description=HOSTILE, address=f"Jl. {HOSTILE}")["report"]["id"]
    intake = running.url("intake")
    for path in ("/open311/v2/requests.xml", f"/open311/v2/requests/{rid}.xml"):
        r = running.http.get(intake + path)
        assert r.status_code == 200, r.text
        root = ET.fromstring(r.content)
        texts = [e.findtext("description") for e in root.iter("request")]
        assert _xml_read(HOSTILE) in texts, path
    for path in ("/open311/v2/requests.json", f"/open311/v2/requests/{rid}.json"):
        r = running.http.get(intake + path)
        assert r.status_code == 200
        assert HOSTILE in [i["description"] for i in r.json()]  # JSON carries it exactly
