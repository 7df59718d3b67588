"""Small OpenStreetMap fixtures built in code: OSM XML, .osm.bz2, .osm.gz, .osm.pbf, Overpass JSON.

The street network is a fictional town ("Testville") on a 0.001-degree grid. Expected facts
about it (counts, segments, tags) are listed next to :func:`town` so tests can assert them.
"""

from __future__ import annotations

import bz2
import gzip
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import osmium

#: South-west corner of the fictional town (lon, lat).
LON0, LAT0 = -82.990, 39.960
#: Grid step in degrees; one step north is 6_371_009 * pi / 180 * 0.001 = 111.195 m.
STEP = 0.001


@dataclass
class OsmFixture:
    """Nodes and ways of a small OSM extract.

    ``nodes`` maps id -> (lon, lat, tags); ``ways`` is a list of (id, node refs, tags). A way
    may reference a node id that is not in ``nodes`` (an extract clipped at a bounding box).
    """

    nodes: dict[int, tuple[float, float, dict[str, str]]] = field(default_factory=dict)
    ways: list[tuple[int, list[int], dict[str, str]]] = field(default_factory=list)


def _grid(i: float, j: float) -> tuple[float, float]:
    return round(LON0 + i * STEP, 7), round(LAT0 + j * STEP, 7)


def town() -> OsmFixture:
    """Return a complete town: every way's nodes are in the extract.

    Kept streets (9 ways, 18 segments, 16 nodes):

    - 100 residential "Main Street" 1-2-3 (segment 1-2 runs due north, 111.195 m)
    - 101 residential "Main Street" 3-4-5
    - 102 primary "First Avenue" oneway=yes 5-6-7
    - 103 secondary "Back Lane" oneway=-1 7-1
    - 104 tertiary junction=roundabout, a closed ring 8-9-10-8
    - 105 service=driveway access=private "Fish & Chips Alley" 5-8
    - 106 footway foot=designated 3-11
    - 111 unclassified 6-6-40 (a doubled node ref: one segment 6-40)
    - 200 path 40-41-42-43-41-44 (revisits node 41: 5 segments)

    Dropped: 107 highway=proposed, 108 service with area=yes, 109 highway=platform,
    110 building (no highway tag).
    """
    fx = OsmFixture()
    coords = {
        1: (0, 0),
        2: (0, 1),
        3: (0, 2),
        4: (1, 2),
        5: (2, 2),
        6: (2, 1),
        7: (2, 0),
        8: (3, 3),
        9: (3.5, 3.5),
        10: (3, 4),
        11: (-1, 2),
        12: (-1, 0),
        13: (4, 0),
        14: (5, 0),
        15: (5, 1),
        16: (6, 0),
        17: (6, 1),
        30: (7, 0),
        31: (8, 0),
        32: (8, 1),
        40: (2, -1),
        41: (2, -2),
        42: (3, -2),
        43: (3, -3),
        44: (2, -3),
    }
    node_tags = {2: {"highway": "crossing"}, 4: {"highway": "traffic_signals"}}
    for nid, (i, j) in coords.items():
        fx.nodes[nid] = (*_grid(i, j), node_tags.get(nid, {}))
    fx.ways = [
        (100, [1, 2, 3], {"highway": "residential", "name": "Main Street", "sidewalk": "both"}),
        (101, [3, 4, 5], {"highway": "residential", "name": "Main Street"}),
        (
            102,
            [5, 6, 7],
            {"highway": "primary", "name": "First Avenue", "oneway": "yes", "maxspeed": "35 mph"},
        ),
        (103, [7, 1], {"highway": "secondary", "name": "Back Lane", "oneway": "-1"}),
        (104, [8, 9, 10, 8], {"highway": "tertiary", "junction": "roundabout"}),
        (
            105,
            [5, 8],
            {
                "highway": "service",
                "service": "driveway",
                "access": "private",
                "name": "Fish & Chips Alley",
            },
        ),
        (106, [3, 11], {"highway": "footway", "foot": "designated"}),
        (107, [1, 12], {"highway": "proposed"}),
        (108, [13, 14, 15, 13], {"highway": "service", "area": "yes"}),
        (109, [16, 17], {"highway": "platform"}),
        (110, [30, 31, 32, 30], {"building": "yes"}),
        (111, [6, 6, 40], {"highway": "unclassified"}),
        (200, [40, 41, 42, 43, 41, 44], {"highway": "path", "motor_vehicle": "no"}),
    ]
    return fx


def clipped_town() -> OsmFixture:
    """Return :func:`town` plus ways that reference nodes missing from the extract.

    Adds (6 missing node refs in all; 11 ways, 21 segments, 22 nodes kept):

    - 120 "Clipped Road" 20-21-[999]-22-23-[998]-[997]-24: kept as 20-21 and 22-23
    - 121 "Edge Street" [996]-25-26: kept as 25-26
    - 122 [995]-[994]: every node missing, the way is dropped
    """
    fx = town()
    for nid, (i, j) in {20: (0, 6), 21: (1, 6), 22: (3, 6), 23: (4, 6), 24: (7, 6)}.items():
        fx.nodes[nid] = (*_grid(i, j), {})
    for nid, (i, j) in {25: (0, 8), 26: (1, 8)}.items():
        fx.nodes[nid] = (*_grid(i, j), {})
    fx.ways += [
        (
            120,
            [20, 21, 999, 22, 23, 998, 997, 24],
            {"highway": "residential", "name": "Clipped Road"},
        ),
        (121, [996, 25, 26], {"highway": "residential", "name": "Edge Street"}),
        (122, [995, 994], {"highway": "residential"}),
    ]
    return fx


def no_streets() -> OsmFixture:
    """Return an extract with a building and a highway=proposed way but no streets."""
    fx = OsmFixture()
    for nid, (i, j) in {1: (0, 0), 2: (1, 0), 3: (1, 1), 4: (5, 5)}.items():
        fx.nodes[nid] = (*_grid(i, j), {})
    fx.ways = [
        (1, [1, 2, 3, 1], {"building": "yes"}),
        (2, [1, 4], {"highway": "proposed"}),
    ]
    return fx


def osm_xml(fx: OsmFixture) -> str:
    """Return the fixture as an OSM XML document (nodes first, then ways, by id)."""
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="tests">']
    for nid in sorted(fx.nodes):
        lon, lat, tags = fx.nodes[nid]
        head = f'  <node id="{nid}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"'
        if not tags:
            lines.append(head + "/>")
            continue
        lines.append(head + ">")
        lines += [f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items()]
        lines.append("  </node>")
    for wid, refs, tags in sorted(fx.ways, key=lambda w: w[0]):
        lines.append(f'  <way id="{wid}" version="1">')
        lines += [f'    <nd ref="{r}"/>' for r in refs]
        lines += [f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items()]
        lines.append("  </way>")
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


def write_osm(fx: OsmFixture, path: Path) -> Path:
    """Write the fixture in the format named by the suffix: .osm, .osm.bz2, .osm.gz, .osm.pbf."""
    path = Path(path)
    text = osm_xml(fx).encode("utf-8")
    name = path.name
    if name.endswith(".osm"):
        path.write_bytes(text)
    elif name.endswith(".osm.bz2"):
        path.write_bytes(bz2.compress(text))
    elif name.endswith(".osm.gz"):
        path.write_bytes(gzip.compress(text))
    elif name.endswith(".pbf"):
        xml = path.with_name(name + ".tmp.osm")
        xml.write_bytes(text)
        with osmium.SimpleWriter(str(path), overwrite=True) as writer:
            for obj in osmium.FileProcessor(str(xml)):
                writer.add(obj)
        xml.unlink()
    else:
        msg = f"write_osm: unsupported suffix in {name!r}"
        raise ValueError(msg)
    return path


def overpass_json(fx: OsmFixture) -> dict:
    """Return what Overpass answers to ``way["highway"](poly:...);>;);out;`` for the fixture.

    Every way with a ``highway`` tag and every node they reference (nodes first). The
    stand-in ignores the query's value filters, so the client must drop non-streets itself.
    """
    ways = [w for w in sorted(fx.ways, key=lambda w: w[0]) if "highway" in w[2]]
    used = {r for _, refs, _ in ways for r in refs}
    elements: list[dict] = []
    for nid in sorted(used & set(fx.nodes)):
        lon, lat, tags = fx.nodes[nid]
        el: dict = {"type": "node", "id": nid, "lat": lat, "lon": lon}
        if tags:
            el["tags"] = dict(tags)
        elements.append(el)
    elements += [
        {"type": "way", "id": wid, "nodes": list(refs), "tags": dict(tags)}
        for wid, refs, tags in ways
    ]
    return {
        "version": 0.6,
        "generator": "Overpass API stand-in",
        "osm3s": {"timestamp_osm_base": "2024-01-01T00:00:00Z", "copyright": "ODbL"},
        "elements": elements,
    }
