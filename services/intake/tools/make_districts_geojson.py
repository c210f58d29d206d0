"""Generate the demo district polygons of Jakarta (``services/demo/jakarta_districts.geojson``).

Built from public facts only, on purpose coarse: an approximate outline of DKI
Jakarta's mainland and the approximate centre of each of its 42 kecamatan. The
land is cut into a grid of cells (0.004 degrees, about 450 m); each cell goes to
the nearest kecamatan centre (a discrete Voronoi diagram), and each kecamatan's
cells are merged into one polygon by tracing the boundary of the union. The
result does not overlap, covers the land, and puts every kecamatan roughly where
it is: good enough for a demo, to be replaced by operators with official
boundaries (the file path is a setting of intake).

    python -m services.intake.tools.make_districts_geojson [OUTPUT]
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from services.demo import districts as demo_districts

CELL = 0.004
#: Approximate mainland outline of DKI Jakarta (lon, lat), clockwise from the north-west.
OUTLINE: list[tuple[float, float]] = [
    (106.690, -6.098),
    (106.740, -6.097),
    (106.790, -6.104),
    (106.830, -6.118),
    (106.870, -6.102),
    (106.920, -6.092),
    (106.972, -6.094),
    (106.972, -6.150),
    (106.975, -6.200),
    (106.955, -6.260),
    (106.930, -6.320),
    (106.910, -6.366),
    (106.860, -6.370),
    (106.800, -6.360),
    (106.770, -6.320),
    (106.740, -6.280),
    (106.720, -6.230),
    (106.690, -6.180),
]
#: Approximate centre of each kecamatan (lat, lon).
CENTRES: dict[str, tuple[float, float]] = {
    "jakarta-pusat.gambir": (-6.1767, 106.8227),
    "jakarta-pusat.sawah-besar": (-6.1573, 106.8330),
    "jakarta-pusat.kemayoran": (-6.1617, 106.8560),
    "jakarta-pusat.senen": (-6.1820, 106.8440),
    "jakarta-pusat.cempaka-putih": (-6.1790, 106.8710),
    "jakarta-pusat.menteng": (-6.1960, 106.8350),
    "jakarta-pusat.tanah-abang": (-6.2050, 106.8120),
    "jakarta-pusat.johar-baru": (-6.1850, 106.8560),
    "jakarta-utara.penjaringan": (-6.1200, 106.7700),
    "jakarta-utara.pademangan": (-6.1330, 106.8400),
    "jakarta-utara.tanjung-priok": (-6.1300, 106.8800),
    "jakarta-utara.koja": (-6.1150, 106.9100),
    "jakarta-utara.kelapa-gading": (-6.1600, 106.9050),
    "jakarta-utara.cilincing": (-6.1250, 106.9500),
    "jakarta-barat.cengkareng": (-6.1490, 106.7350),
    "jakarta-barat.grogol-petamburan": (-6.1650, 106.7890),
    "jakarta-barat.taman-sari": (-6.1460, 106.8150),
    "jakarta-barat.tambora": (-6.1470, 106.8000),
    "jakarta-barat.kebon-jeruk": (-6.1950, 106.7700),
    "jakarta-barat.kalideres": (-6.1400, 106.7000),
    "jakarta-barat.palmerah": (-6.2000, 106.7950),
    "jakarta-barat.kembangan": (-6.1900, 106.7400),
    "jakarta-selatan.tebet": (-6.2300, 106.8530),
    "jakarta-selatan.setiabudi": (-6.2180, 106.8300),
    "jakarta-selatan.mampang-prapatan": (-6.2450, 106.8250),
    "jakarta-selatan.pasar-minggu": (-6.2850, 106.8400),
    "jakarta-selatan.kebayoran-lama": (-6.2450, 106.7750),
    "jakarta-selatan.cilandak": (-6.2900, 106.8000),
    "jakarta-selatan.kebayoran-baru": (-6.2400, 106.8000),
    "jakarta-selatan.pancoran": (-6.2550, 106.8450),
    "jakarta-selatan.jagakarsa": (-6.3350, 106.8200),
    "jakarta-selatan.pesanggrahan": (-6.2550, 106.7550),
    "jakarta-timur.matraman": (-6.2030, 106.8600),
    "jakarta-timur.pulo-gadung": (-6.1900, 106.8950),
    "jakarta-timur.jatinegara": (-6.2250, 106.8750),
    "jakarta-timur.kramat-jati": (-6.2700, 106.8650),
    "jakarta-timur.pasar-rebo": (-6.3200, 106.8600),
    "jakarta-timur.cakung": (-6.1850, 106.9450),
    "jakarta-timur.duren-sawit": (-6.2300, 106.9150),
    "jakarta-timur.makasar": (-6.2650, 106.8850),
    "jakarta-timur.ciracas": (-6.3250, 106.8750),
    "jakarta-timur.cipayung": (-6.3250, 106.9050),
}

Cell = tuple[int, int]
Vertex = tuple[int, int]


def _inside(lon: float, lat: float, ring: list[tuple[float, float]]) -> bool:
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def assign_cells() -> tuple[dict[str, set[Cell]], float, float]:
    lons = [p[0] for p in OUTLINE]
    lats = [p[1] for p in OUTLINE]
    x0, y0 = min(lons), min(lats)
    nx = math.ceil((max(lons) - x0) / CELL)
    ny = math.ceil((max(lats) - y0) / CELL)
    cos_lat = math.cos(math.radians(-6.2))
    cells: dict[str, set[Cell]] = defaultdict(set)
    for i in range(nx):
        for j in range(ny):
            lon = x0 + (i + 0.5) * CELL
            lat = y0 + (j + 0.5) * CELL
            if not _inside(lon, lat, OUTLINE):
                continue
            best = min(
                CENTRES,
                key=lambda d: ((CENTRES[d][1] - lon) * cos_lat) ** 2 + (CENTRES[d][0] - lat) ** 2,
            )
            cells[best].add((i, j))
    return cells, x0, y0


def _largest_component(cells: set[Cell]) -> set[Cell]:
    seen: set[Cell] = set()
    best: set[Cell] = set()
    for start in cells:
        if start in seen:
            continue
        comp = {start}
        stack = [start]
        seen.add(start)
        while stack:
            i, j = stack.pop()
            for n in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
                if n in cells and n not in seen:
                    seen.add(n)
                    comp.add(n)
                    stack.append(n)
        if len(comp) > len(best):
            best = comp
    return best


def trace_rings(cells: set[Cell]) -> list[list[Vertex]]:
    """Boundary rings of a union of grid cells, counter-clockwise, collinear points removed."""
    edges: dict[Vertex, list[Vertex]] = defaultdict(list)
    for i, j in cells:
        if (i, j - 1) not in cells:
            edges[(i, j)].append((i + 1, j))
        if (i + 1, j) not in cells:
            edges[(i + 1, j)].append((i + 1, j + 1))
        if (i, j + 1) not in cells:
            edges[(i + 1, j + 1)].append((i, j + 1))
        if (i - 1, j) not in cells:
            edges[(i, j + 1)].append((i, j))
    rings: list[list[Vertex]] = []
    while edges:
        start = next(iter(edges))
        ring = [start]
        prev = start
        cur = edges[start].pop()
        if not edges[start]:
            del edges[start]
        while cur != start:
            ring.append(cur)
            options = edges[cur]
            if len(options) > 1:  # pinch point: keep turning left, which keeps pieces apart
                dx, dy = cur[0] - prev[0], cur[1] - prev[1]
                left = (cur[0] - dy, cur[1] + dx)
                nxt = left if left in options else options[0]
                options.remove(nxt)
            else:
                nxt = options.pop()
            if not options:
                del edges[cur]
            prev, cur = cur, nxt
        rings.append(_simplify(ring))
    return rings


def _simplify(ring: list[Vertex]) -> list[Vertex]:
    out: list[Vertex] = []
    n = len(ring)
    for k in range(n):
        a, b, c = ring[k - 1], ring[k], ring[(k + 1) % n]
        if (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]) != 0:
            out.append(b)
    return out


def build() -> dict[str, object]:
    cells, x0, y0 = assign_cells()
    info = {d["id"]: d for d in demo_districts()["districts"]}
    if set(info) != set(CENTRES):
        raise SystemExit(f"district ids differ from districts.json: {set(info) ^ set(CENTRES)}")
    features = []
    for district_id in sorted(CENTRES):
        own = _largest_component(cells[district_id])
        rings = trace_rings(own)
        if len(rings) != 1:
            raise SystemExit(f"{district_id}: {len(rings)} rings; adjust the centres or CELL")
        ring = [[round(x0 + i * CELL, 6), round(y0 + j * CELL, 6)] for i, j in rings[0]]
        ring.append(ring[0])
        lat, lon = CENTRES[district_id]
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "district_id": district_id,
                    "name": info[district_id]["name"],
                    "city_id": info[district_id]["city_id"],
                    "approx_centre": [lon, lat],
                },
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return {
        "type": "FeatureCollection",
        "name": "jakarta_districts_demo",
        "description": (
            "Approximate, simplified kecamatan of DKI Jakarta (mainland) for the demo: a grid "
            "assigned to the nearest approximate kecamatan centre. Not official boundaries."
        ),
        "features": features,
    }


def main(argv: list[str]) -> int:
    out = (
        Path(argv[0]) if argv else Path(__file__).parents[2] / "demo" / "jakarta_districts.geojson"
    )
    collection = build()
    out.write_text(json.dumps(collection, separators=(",", ":")) + "\n")
    print(f"wrote {len(collection['features'])} districts to {out}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
