"""A realistic day in Jakarta, planned up front from a seed (pure: no I/O).

Citizens report across the 42 kecamatan with a realistic mix of categories and a
few hotspots (floods along the rivers in the north and east, garbage and illegal
parking around markets); some reports are duplicates of a problem already
reported nearby, some requests are bad, some phones retry. Agencies acknowledge,
start and resolve with evidence, transfer or reject; some leave cases waiting;
some reporters reopen, confirm or rate. Citizens answer their category's questions
(the service definition intake publishes), some attach a photo, and others say "me too"
on an open report, some of them asking to be told when it is fixed. The same seed gives
the same day.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

CATEGORY_MIX: dict[str, float] = {
    "garbage": 0.22,
    "road-damage": 0.20,
    "flood": 0.12,
    "blocked-drain": 0.10,
    "illegal-parking": 0.12,
    "streetlight": 0.08,
    "damaged-sidewalk": 0.06,
    "fallen-tree": 0.04,
    "street-vendor-obstruction": 0.04,
    "water-supply": 0.02,
}

#: (district id, categories that cluster there, extra weight)
HOTSPOTS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("jakarta-timur.jatinegara", ("flood", "blocked-drain"), 4.0),  # Kampung Melayu, Ciliwung
    ("jakarta-utara.penjaringan", ("flood", "garbage"), 3.0),
    ("jakarta-barat.cengkareng", ("flood", "road-damage"), 2.5),
    ("jakarta-utara.kelapa-gading", ("flood",), 2.0),
    ("jakarta-pusat.tanah-abang", ("illegal-parking", "garbage", "street-vendor-obstruction"), 4.0),
    ("jakarta-pusat.senen", ("garbage", "street-vendor-obstruction"), 2.5),
    ("jakarta-selatan.kebayoran-baru", ("illegal-parking",), 2.0),
    ("jakarta-utara.tanjung-priok", ("road-damage",), 2.0),
)

DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "garbage": (
        "Sampah menumpuk di pinggir jalan sudah tiga hari",
        "Garbage piling up near the market",
    ),
    "road-damage": (
        "Jalan berlubang besar, berbahaya untuk motor",
        "Deep pothole in the right lane",
    ),
    "flood": ("Banjir setinggi lutut, air tidak surut", "Street flooded after the rain"),
    "blocked-drain": ("Saluran air tersumbat sampah", "Drain blocked, water overflowing"),
    "illegal-parking": ("Parkir liar memakan badan jalan", "Cars parked on the sidewalk all day"),
    "streetlight": ("Lampu jalan mati sepanjang gang", "Streetlight out at the junction"),
    "damaged-sidewalk": ("Trotoar rusak dan licin", "Broken paving on the sidewalk"),
    "fallen-tree": ("Pohon tumbang menutup jalan", "Tree leaning dangerously over the road"),
    "street-vendor-obstruction": ("PKL menutup trotoar", "Vendors blocking the pedestrian path"),
    "water-supply": ("Air PAM mati sejak pagi", "No tap water since this morning"),
}

BadKind = Literal["unknown_category", "outside_city", "empty_description", "bad_coordinates"]


@dataclass(frozen=True)
class PlannedReport:
    index: int
    category: str
    district_id: str
    lat: float
    lon: float
    description: str
    language: Literal["id", "en"]
    email: str | None
    bad: BadKind | None = None
    duplicate_of: int | None = None  # index of an earlier report nearby
    retry: bool = False  # the phone resends with the same Idempotency-Key
    run_id: str = ""  # keeps keys of different simulated days apart
    photo: bool = False  # the citizen uploads a photo and attaches it
    answers_seed: int = 0  # draws the answers to the category's questions (answer_questions)
    supporters: int = 0  # other citizens who say "me too" once it is routed
    followers: int = 0  # of them, those who ask to be told when it is fixed

    @property
    def supporter_ids(self) -> list[str]:
        """Opaque ids each supporter's app keeps (the me-too API wants 16 characters)."""
        return [f"sim-{self.run_id}-{self.index:06d}-s{n}" for n in range(self.supporters)]

    @property
    def idempotency_key(self) -> str:
        return f"sim-{self.run_id}-{self.index:06d}"


@dataclass(frozen=True)
class AgencyPlan:
    """What the agency does with a case; drawn per report."""

    acknowledge: bool
    outcome: Literal["resolve", "reject", "transfer", "leave"]
    reporter: Literal["confirm", "reopen", "rate", "nothing"]


@dataclass
class Day:
    reports: list[PlannedReport] = field(default_factory=list)
    plans: dict[int, AgencyPlan] = field(default_factory=dict)


def _point_in(
    district_bbox: tuple[float, float, float, float], contains: object, rng: random.Random
) -> tuple[float, float]:
    min_lon, min_lat, max_lon, max_lat = district_bbox
    for _ in range(200):
        lon = rng.uniform(min_lon, max_lon)
        lat = rng.uniform(min_lat, max_lat)
        if contains(lon, lat):  # type: ignore[operator]
            return round(lat, 6), round(lon, 6)
    raise RuntimeError("could not sample a point in the district")


def _nearby(
    lat: float, lon: float, rng: random.Random, within_m: float = 20.0
) -> tuple[float, float]:
    """A point within ``within_m`` metres: a second citizen reporting the same problem."""
    d = rng.uniform(0, within_m)
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = d * math.cos(bearing) / 111_320
    dlon = d * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def answer_questions(attributes: Sequence[dict[str, Any]], rng: random.Random) -> dict[str, Any]:
    """A citizen's answers to a category's questions (a service definition's attributes as
    intake publishes them): every required one, most optional ones, each valid for its
    datatype and value list, written as intake keeps them (so they can be compared)."""
    answers: dict[str, Any] = {}
    for attr in attributes:
        if not attr.get("required") and rng.random() < 0.3:
            continue  # a citizen skips an optional question now and then
        keys = [v["key"] for v in attr.get("values") or ()]
        datatype = attr["datatype"]
        value: Any
        if datatype == "number":
            value = rng.randint(1, 60)
        elif datatype == "singlevaluelist":
            value = rng.choice(keys)
        elif datatype == "multivaluelist":
            value = sorted(rng.sample(keys, rng.randint(1, len(keys))))
        elif datatype == "datetime":
            day, hour, minute = rng.randint(1, 28), rng.randint(0, 23), rng.choice((0, 30))
            value = f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00Z"
        elif datatype == "text":
            value = rng.choice(("Sudah lama begini", "Since last week", "Dekat halte bus"))
        else:  # string: an identifier read off something (a meter, a pole)
            value = "".join(rng.choice("0123456789") for _ in range(12))
        answers[attr["code"]] = value
    return answers


def plan_day(
    n: int,
    districts: Sequence[tuple[str, tuple[float, float, float, float], object]],
    seed: int = 7,
    duplicate_rate: float = 0.05,
    bad_rate: float = 0.03,
    retry_rate: float = 0.02,
    photo_rate: float = 0.3,
    support_rate: float = 0.15,
    follow_rate: float = 0.4,
) -> Day:
    """``districts``: (district id, bbox, contains(lon, lat)) for every district."""
    rng = random.Random(seed)
    # photos, answers and "me too" draw from their own stream: the rest of a seed's day
    # stays what it was before citizens did these
    citizens = random.Random(f"{seed}-citizens")
    run_id = f"{seed}-{uuid.uuid4().hex[:8]}"
    weights = {d[0]: 1.0 for d in districts}
    for district_id, _, extra in HOTSPOTS:
        if district_id in weights:
            weights[district_id] += extra
    ids = list(weights)
    by_id = {d[0]: d for d in districts}
    categories = list(CATEGORY_MIX)
    day = Day()
    for i in range(n):
        district_id = rng.choices(ids, weights=[weights[d] for d in ids])[0]
        hot = [cats for d, cats, _ in HOTSPOTS if d == district_id]
        if hot and rng.random() < 0.5:
            category = rng.choice(hot[0])
        else:
            category = rng.choices(categories, weights=list(CATEGORY_MIX.values()))[0]
        language: Literal["id", "en"] = "id" if rng.random() < 0.8 else "en"
        description = DESCRIPTIONS[category][0 if language == "id" else 1]
        email = f"warga{i}@example.org" if rng.random() < 0.7 else None
        duplicate_of = None
        earlier = [r for r in day.reports if r.bad is None and r.duplicate_of is None]
        if earlier and rng.random() < duplicate_rate:
            original = rng.choice(earlier)
            duplicate_of = original.index
            category, district_id = original.category, original.district_id
            contains = by_id[district_id][2]
            for _ in range(50):  # near the boundary, stay inside the same district
                lat, lon = _nearby(original.lat, original.lon, rng)
                if contains(lon, lat):  # type: ignore[operator]
                    break
            else:
                lat, lon = original.lat, original.lon
        else:
            _, bbox, contains = by_id[district_id]
            lat, lon = _point_in(bbox, contains, rng)
        bad: BadKind | None = None
        if duplicate_of is None and rng.random() < bad_rate:
            bad = rng.choice(
                ["unknown_category", "outside_city", "empty_description", "bad_coordinates"]
            )
        valid = bad is None
        supporters = (
            citizens.randint(1, 3)
            if valid and duplicate_of is None and citizens.random() < support_rate
            else 0
        )
        followers = sum(1 for _ in range(supporters) if citizens.random() < follow_rate)
        day.reports.append(
            PlannedReport(
                index=i,
                category=category,
                district_id=district_id,
                lat=lat,
                lon=lon,
                description=description,
                language=language,
                email=email,
                bad=bad,
                duplicate_of=duplicate_of,
                retry=bad is None and rng.random() < retry_rate,
                run_id=run_id,
                photo=valid and citizens.random() < photo_rate,
                answers_seed=citizens.randrange(2**31),
                supporters=supporters,
                followers=followers,
            )
        )
        roll = rng.random()
        outcome: Literal["resolve", "reject", "transfer", "leave"] = (
            "resolve"
            if roll < 0.78
            else "transfer"
            if roll < 0.86
            else "reject"
            if roll < 0.90
            else "leave"
        )
        acknowledge = outcome != "leave" or rng.random() < 0.5
        reporter_roll = rng.random()
        reporter: Literal["confirm", "reopen", "rate", "nothing"] = (
            "confirm"
            if reporter_roll < 0.55
            else "reopen"
            if reporter_roll < 0.65
            else "rate"
            if reporter_roll < 0.85
            else "nothing"
        )
        day.plans[i] = AgencyPlan(acknowledge=acknowledge, outcome=outcome, reporter=reporter)
    return day
