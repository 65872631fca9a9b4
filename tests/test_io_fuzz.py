"""Property-based bad-input tests for every reader.

Each case writes generated content to a temporary file and reads it. About half
the documents of each format are generated to be valid; the rest are malformed.
The property: ``read_network`` either raises one of our domain errors
(``ValidationError``, which ``InputFormatError`` subclasses) whose message names
the file, or returns a Network that satisfies the table invariants; a document
generated to be valid must read. Any other exception type fails the test.

Each test then checks its outcome counts, so that a reader that rejected (or
accepted) everything, or a generator that stopped producing one kind of
document, fails: at least :data:`MIN_SHARE` of the cases must be generated valid
(and all of them read), and at least :data:`MIN_SHARE` of the malformed ones must
be rejected with a domain error. (Measured on two runs: 40-64 % of the cases are
valid, and 95-100 % of the malformed ones are rejected.)
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from planner.errors import ValidationError
from planner.io.readers import read_network
from planner.model.network import MIN_LINK_KM, SITE_KINDS, Network

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MIN_SHARE = 0.3


def _check_invariants(net: Network) -> None:
    net.validate()
    sites, links = net.sites, net.links
    assert len(sites) >= 1
    assert sites.index.is_unique
    assert all(isinstance(s, str) and s for s in sites.index)
    lat = sites["lat"].to_numpy(dtype=float)
    lon = sites["lon"].to_numpy(dtype=float)
    assert np.all(np.isfinite(lat)) and np.all(np.abs(lat) <= 90)
    assert np.all(np.isfinite(lon)) and np.all(np.abs(lon) <= 180)
    assert set(sites["kind"]) <= SITE_KINDS
    assert np.all(sites["demand"].to_numpy(dtype=float) >= 0)
    if len(links):
        assert links["link_id"].is_unique
        assert set(links["u"]) | set(links["v"]) <= set(sites.index)
        assert not (links["u"] == links["v"]).any()
        lengths = links["length_km"].to_numpy(dtype=float)
        assert np.all(np.isfinite(lengths)) and np.all(lengths >= MIN_LINK_KM)
        pairs = [frozenset(p) for p in zip(links["u"], links["v"], strict=True)]
        assert len(set(pairs)) == len(pairs)  # parallel links collapsed
    summary = net.summary()
    assert summary["n_components"] >= 1
    fib = net.fibre_km(net.site_ids()[:1])
    assert fib.iloc[0, 0] == 0.0


def _read(content: bytes | str, suffix: str, *, valid: bool, **kwargs) -> str:
    """Write content, read it, check the property; return "valid read", "malformed read" or "malformed rejected"."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        try:
            net = read_network(path, **kwargs)
        except ValidationError as exc:
            assert str(path) in str(exc), str(exc)
            assert not valid, f"a document generated to be valid was rejected:\n{exc}\n--- document:\n{content!r}"
            outcome = "rejected"
        else:
            _check_invariants(net)
            outcome = "read"
    label = f"{'valid' if valid else 'malformed'} {outcome}"
    event(label)
    return label


def _check_mix(outcomes: Counter[str], *, min_valid: float = MIN_SHARE, min_rejected: float = MIN_SHARE) -> None:
    """Enough of the cases were generated valid (and all of those read), and enough of the
    malformed ones were rejected with a domain error (shares; the counts are in the message)."""
    total = sum(outcomes.values())
    malformed = outcomes["malformed read"] + outcomes["malformed rejected"]
    assert total > 0 and set(outcomes) <= {"valid read", "malformed read", "malformed rejected"}, dict(outcomes)
    assert outcomes["valid read"] >= min_valid * total, f"too few valid documents: {dict(outcomes)}"
    assert malformed > 0 and outcomes["malformed rejected"] >= min_rejected * malformed, (
        f"too few malformed documents rejected: {dict(outcomes)}"
    )


# --------------------------------------------------------------------------- value strategies
NUMBER_TEXT = st.one_of(
    st.floats(min_value=-90, max_value=90).map(repr),  # in range for both axes
    st.floats(allow_nan=True, allow_infinity=True).map(repr),  # anything, incl. nan/inf/huge
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e400", "abc", "12,5", "0x10", "--1", "½"]),
    st.integers(min_value=-1000, max_value=1000).map(str),
)
VALID_LAT = st.floats(min_value=-90, max_value=90).map(repr)
VALID_LON = st.floats(min_value=-180, max_value=180).map(repr)
NAME_TEXT = st.one_of(
    st.sampled_from(["A", "B", "C", "A", "", " ", "Zürich", "a,b", 'q"uote', "日本"]),
    st.text(min_size=0, max_size=8),
)
JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-100, max_value=100),
    st.text(max_size=6),
)


# --------------------------------------------------------------------------- CSV
@st.composite
def csv_documents(draw: st.DrawFn) -> tuple[bytes, bool]:
    pool = [
        "name",
        "lat",
        "lon",
        "latitude",
        "longitude",
        "x",
        "y",
        "kind",
        "demand",
        "site_id",
        "extra",
        "",
    ]
    clean = draw(st.booleans())  # half the cases are valid files (the invariants get exercised)
    header = draw(st.lists(st.sampled_from(pool), min_size=0, max_size=6))
    if clean:
        header = ["name", draw(st.sampled_from(["lat", "latitude"])), "lon", "kind", "demand"]
    elif draw(st.booleans()):
        header = ["name", "lat", "lon"] + header[:2]
    delim = draw(st.sampled_from([",", ";", "\t"]))
    kinds = sorted(SITE_KINDS) + ["", "wizard", "END"]
    rows = []
    for i in range(draw(st.integers(min_value=0 if not clean else 1, max_value=6))):
        if clean:
            rows.append(
                [
                    f"S{i}",
                    draw(VALID_LAT),
                    draw(VALID_LON),
                    draw(st.sampled_from(sorted(SITE_KINDS) + [""])),
                    draw(st.sampled_from(["", "0", "1", "2.5"])),
                ]
            )
            continue
        cells = []
        for col in header:
            if col in ("lat", "lon", "latitude", "longitude", "x", "y", "demand"):
                cells.append(draw(NUMBER_TEXT))
            elif col == "kind":
                cells.append(draw(st.sampled_from(kinds)))
            else:
                cells.append(draw(NAME_TEXT))
        if draw(st.integers(0, 9)) == 0:  # ragged row
            cells = cells[: draw(st.integers(0, len(cells)))] + draw(st.lists(NAME_TEXT, max_size=2))
        rows.append(cells)

    def line(cells: list[str]) -> str:
        quoted = []
        for c in cells:
            if any(ch in c for ch in (delim, '"', "\n", "\r")) and draw(st.booleans()):
                c = '"' + c.replace('"', '""') + '"'
            quoted.append(c)
        return delim.join(quoted)

    text = "\n".join(line(r) for r in [header, *rows]) + draw(st.sampled_from(["", "\n", "\n\n"]))
    data = text.encode("utf-8")
    mutation = 99 if clean else draw(st.integers(0, 11))
    if mutation == 0:  # non-UTF-8 bytes
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + b"\xff\xfe" + data[pos:]
    elif mutation == 1:  # truncation
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == 2:  # NUL byte
        data = data + b"\x00"
    return data, clean


def test_fuzz_csv() -> None:
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(case=csv_documents(), use_crs=st.booleans())
    def prop(case: tuple[bytes, bool], use_crs: bool) -> None:
        doc, valid = case
        outcomes[_read(doc, ".csv", valid=valid, crs="EPSG:32631" if use_crs else None)] += 1

    prop()
    _check_mix(outcomes)


# --------------------------------------------------------------------------- QMAN JSON
@st.composite
def qman_documents(draw: st.DrawFn) -> tuple[str, bool]:
    names = ["EN1", "EN2", "TR1", "BB", "EN1", ""]
    types = ["EndNode", "TrustedRepeaterNode", "BackboneNode", "UntrustedRepeaterNode", "Alien"]
    if draw(st.booleans()):  # a valid document
        n = draw(st.integers(1, 6))
        nodes = [
            {
                "name": f"N{i}",
                "type": draw(st.sampled_from(types[:4])),
                "latitude": draw(st.floats(-90, 90)),
                "longitude": draw(st.floats(-180, 180)),
            }
            for i in range(n)
        ]
        links = []
        for _ in range(draw(st.integers(0, 8)) if n > 1 else 0):
            u, v = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
            links.append(
                {
                    "node1": f"N{u}",
                    "node2": f"N{v}",
                    "qchannel": {"distance": draw(st.floats(0, 1e5))},
                }
            )
        return json.dumps({"nodes": nodes, "links": links}), True
    nodes = []
    for _ in range(draw(st.integers(0, 5))):
        node = {
            "name": draw(st.one_of(st.sampled_from(names), JSON_SCALAR)),
            "type": draw(st.one_of(st.sampled_from(types), JSON_SCALAR)),
            "latitude": draw(st.one_of(st.floats(-90, 90), JSON_SCALAR)),
            "longitude": draw(st.one_of(st.floats(-180, 180), JSON_SCALAR)),
        }
        for key in draw(st.lists(st.sampled_from(list(node)), max_size=2)):
            node.pop(key, None)
        nodes.append(node if draw(st.integers(0, 15)) else draw(JSON_SCALAR))
    links = []
    for _ in range(draw(st.integers(0, 5))):
        dist = draw(st.one_of(st.floats(0, 30000), JSON_SCALAR, st.sampled_from([-5, "7 km"])))
        link = {
            "node1": draw(st.one_of(st.sampled_from(names + ["ZZ"]), JSON_SCALAR)),
            "node2": draw(st.one_of(st.sampled_from(names + ["ZZ"]), JSON_SCALAR)),
            "qchannel": draw(st.sampled_from([{"distance": dist}, {}, dist])),
        }
        links.append(link if draw(st.integers(0, 15)) else draw(JSON_SCALAR))
    doc: object = {"nodes": nodes, "links": links}
    shape = draw(st.integers(0, 9))
    if shape == 0:
        doc = {"nodes": draw(JSON_SCALAR), "links": links}
    elif shape == 1:
        doc = {"nodes": nodes, "links": draw(JSON_SCALAR)}
    text = json.dumps(doc)
    if shape == 2:
        text = text[: draw(st.integers(0, len(text)))]
    return text, False


def test_fuzz_qman_json() -> None:
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(case=qman_documents())
    def prop(case: tuple[str, bool]) -> None:
        outcomes[_read(case[0], ".json", valid=case[1])] += 1

    prop()
    _check_mix(outcomes)


# --------------------------------------------------------------------------- GraphML / GML
@st.composite
def graph_parts(draw: st.DrawFn) -> tuple[list[dict], list[tuple[int, int, str | None]], bool]:
    n = draw(st.integers(0, 6))
    nodes = []
    if draw(st.booleans()):  # a valid graph: coordinates everywhere, edges between distinct nodes
        n = max(n, 1)
        for i in range(n):
            nodes.append(
                {
                    "id": i,
                    "label": draw(st.sampled_from(["A", "B", "C", "A", "Ωmega"])),
                    "lat": draw(VALID_LAT),
                    "lon": draw(VALID_LON),
                    # node 0 is internal, so dropping external nodes leaves at least one site
                    "internal": draw(st.sampled_from([None, "1", "0"] if i else [None, "1"])),
                }
            )
        edges = []
        for _ in range(draw(st.integers(0, 8)) if n > 1 else 0):
            u, v = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
            length = draw(st.one_of(st.none(), st.floats(0, 500).map(repr)))
            edges.append((u, v, length))
        return nodes, edges, True
    for i in range(n):
        nodes.append(
            {
                "id": i,
                "label": draw(st.sampled_from(["A", "B", "C", "A", "", "Ωmega"])),
                "lat": draw(st.one_of(st.none(), NUMBER_TEXT)),
                "lon": draw(st.one_of(st.none(), NUMBER_TEXT)),
                "internal": draw(st.sampled_from([None, "0", "1"])),
            }
        )
    edges = []
    for _ in range(draw(st.integers(0, 8))):
        u = draw(st.integers(0, max(n, 1)))  # may name a node that does not exist
        v = draw(st.integers(0, max(n, 1)))
        length = draw(st.one_of(st.none(), NUMBER_TEXT))
        edges.append((u, v, length))
    return nodes, edges, False


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@st.composite
def graphml_documents(draw: st.DrawFn) -> tuple[bytes, bool]:
    nodes, edges, valid = draw(graph_parts())
    lat_type = draw(st.sampled_from(["double", "string"]))
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
        '<key attr.name="label" attr.type="string" for="node" id="d0"/>',
        f'<key attr.name="Latitude" attr.type="{lat_type}" for="node" id="d1"/>',
        f'<key attr.name="Longitude" attr.type="{lat_type}" for="node" id="d2"/>',
        '<key attr.name="Internal" attr.type="int" for="node" id="d3"/>',
        '<key attr.name="length" attr.type="string" for="edge" id="d4"/>',
        f'<graph edgedefault="{draw(st.sampled_from(["undirected", "directed"]))}">',
    ]
    for node in nodes:
        data = f'<data key="d0">{_xml_text(node["label"])}</data>'
        if node["lat"] is not None:
            data += f'<data key="d1">{_xml_text(node["lat"])}</data>'
        if node["lon"] is not None:
            data += f'<data key="d2">{_xml_text(node["lon"])}</data>'
        if node["internal"] is not None:
            data += f'<data key="d3">{node["internal"]}</data>'
        parts.append(f'<node id="{node["id"]}">{data}</node>')
    for u, v, length in edges:
        data = "" if length is None else f'<data key="d4">{_xml_text(length)}</data>'
        parts.append(f'<edge source="{u}" target="{v}">{data}</edge>')
    parts.append("</graph></graphml>")
    raw = "\n".join(parts).encode("utf-8")
    mutation = 99 if valid else draw(st.integers(0, 11))  # valid documents stay intact
    if mutation == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif mutation == 1:
        pos = draw(st.integers(0, len(raw)))
        raw = raw[:pos] + draw(st.binary(min_size=1, max_size=4)) + raw[pos:]
    return raw, valid


def test_fuzz_graphml() -> None:
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(case=graphml_documents(), drop_external=st.booleans())
    def prop(case: tuple[bytes, bool], drop_external: bool) -> None:
        outcomes[_read(case[0], ".graphml", valid=case[1], drop_external=drop_external)] += 1

    prop()
    _check_mix(outcomes)


def _gml_value(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return '"' + value.replace('"', "'") + '"'
    return value.strip() if math.isfinite(number) and value.strip() == value and value else f'"{value}"'


@st.composite
def gml_documents(draw: st.DrawFn) -> tuple[bytes, bool]:
    nodes, edges, valid = draw(graph_parts())
    lines = ["graph ["]
    if draw(st.booleans()):
        lines.append("  multigraph 1")
    use_position = draw(st.booleans())
    for node in nodes:
        body = [f"id {node['id']}", f'label "{node["label"]}"']
        if use_position and node["lat"] is not None and node["lon"] is not None:
            body.append(f'position "[{node["lon"]}, {node["lat"]}]"')
        else:
            if node["lat"] is not None:
                body.append(f"Latitude {_gml_value(node['lat'])}")
            if node["lon"] is not None:
                body.append(f"Longitude {_gml_value(node['lon'])}")
        if node["internal"] is not None:
            body.append(f"Internal {node['internal']}")
        lines.append("  node [ " + " ".join(body) + " ]")
    for u, v, length in edges:
        extra = "" if length is None else f" length {_gml_value(length)}"
        lines.append(f"  edge [ source {u} target {v}{extra} ]")
    lines.append("]")
    raw = "\n".join(lines).encode("utf-8")
    mutation = 99 if valid else draw(st.integers(0, 11))  # valid documents stay intact
    if mutation == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif mutation == 1:
        pos = draw(st.integers(0, len(raw)))
        raw = raw[:pos] + draw(st.binary(min_size=1, max_size=4)) + raw[pos:]
    return raw, valid


def test_fuzz_gml() -> None:
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(case=gml_documents())
    def prop(case: tuple[bytes, bool]) -> None:
        outcomes[_read(case[0], ".gml", valid=case[1])] += 1

    prop()
    _check_mix(outcomes)


# --------------------------------------------------------------------------- SNDlib
@st.composite
def sndlib_documents(draw: st.DrawFn) -> tuple[str, bool]:
    names = ["Gdansk", "Warsaw", "Wroclaw", "Gdansk", "X"]
    lines = ["?SNDlib native format; type: network; version: 1.0", "# generated"]
    if draw(st.booleans()):
        lines += ["META (", "  granularity = 6month", ")"]
    if draw(st.booleans()):  # a valid document
        n = draw(st.integers(1, 6))
        lines.append("NODES (")
        lines += [f"  N{i} ( {draw(VALID_LON)} {draw(VALID_LAT)} )" for i in range(n)]
        lines += [")", "LINKS ("]
        for j in range(draw(st.integers(0, 8)) if n > 1 else 0):
            u, v = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
            lines.append(f"  L{j} ( N{u} N{v} ) 0.00 0.00 0.00 156.00 ( 155.00 156.00 )")
        lines += [")", "DEMANDS (", "  D0 ( N0 N0 ) 1 1.00 UNLIMITED", ")"]
        return "\n".join(lines) + "\n", True
    if draw(st.integers(0, 9)):
        lines.append("NODES (")
        for _ in range(draw(st.integers(0, 5))):
            name = draw(st.sampled_from(names))
            shape = draw(st.integers(0, 9))
            if shape == 0:
                lines.append(f"  {name} {draw(NUMBER_TEXT)}")
            else:
                lines.append(f"  {name} ( {draw(NUMBER_TEXT) or '0'} {draw(NUMBER_TEXT) or '0'} )")
        if draw(st.integers(0, 9)):
            lines.append(")")
    if draw(st.booleans()):
        lines.append("LINKS (")
        for i in range(draw(st.integers(0, 5))):
            u, v = draw(st.sampled_from(names)), draw(st.sampled_from(names))
            lines.append(f"  L{i} ( {u} {v} ) 0.00 0.00 0.00 156.00 ( 155.00 156.00 )")
        if draw(st.integers(0, 9)):
            lines.append(")")
    if draw(st.integers(0, 5)) == 0:
        lines.append(draw(st.text(max_size=20)))
    return "\n".join(lines) + "\n", False


def test_fuzz_sndlib() -> None:
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(case=sndlib_documents())
    def prop(case: tuple[str, bool]) -> None:
        outcomes[_read(case[0], ".txt", valid=case[1])] += 1

    prop()
    _check_mix(outcomes)


# --------------------------------------------------------------------------- GeoJSON
@st.composite
def geojson_documents(draw: st.DrawFn) -> tuple[str, bool]:
    coord = st.one_of(st.floats(-200, 200), st.floats(-90, 90), st.sampled_from([0.0, 1.0]))
    features = []
    if draw(st.booleans()):  # a valid document: named points, lines joined by u/v or by their ends
        n = draw(st.integers(1, 5))
        # distinct grid cells keep valid points apart (coinciding points joined by their ends
        # would be a real self-loop, which a reader rightly rejects)
        cells = draw(
            st.lists(st.tuples(st.integers(-179, 178), st.integers(-89, 88)), min_size=n, max_size=n, unique=True)
        )
        pts = [(cx + draw(st.floats(0, 0.5)), cy + draw(st.floats(0, 0.5))) for cx, cy in cells]
        for i, (x, y) in enumerate(pts):
            props = {"name": f"P{i}", "demand": draw(st.floats(0, 5))}
            features.append(
                {
                    "type": "Feature",
                    "properties": props,
                    "geometry": {"type": "Point", "coordinates": [x, y]},
                }
            )
        for _ in range(draw(st.integers(0, 4)) if n > 1 else 0):
            u, v = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
            props = {"u": f"P{u}", "v": f"P{v}"} if draw(st.booleans()) else {}
            line = {"type": "LineString", "coordinates": [list(pts[u]), list(pts[v])]}
            features.append({"type": "Feature", "properties": props, "geometry": line})
        return json.dumps({"type": "FeatureCollection", "features": features}), True
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["Point", "LineString", "Polygon", None, "Point"]))
        if kind == "Point":
            geometry: object = {"type": "Point", "coordinates": [draw(coord), draw(coord)]}
        elif kind == "LineString":
            pts = draw(st.lists(st.tuples(coord, coord), min_size=2, max_size=3))
            geometry = {"type": "LineString", "coordinates": [list(p) for p in pts]}
        elif kind == "Polygon":
            geometry = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
        else:
            geometry = None
        props = {
            "name": draw(st.one_of(st.sampled_from(["A", "B", "A"]), st.none(), st.integers(0, 3))),
            "kind": draw(st.sampled_from(["site", "end", "wizard", None])),
            "demand": draw(st.one_of(st.none(), st.floats(-1, 5), st.just("x"))),
        }
        if kind == "LineString" and draw(st.booleans()):
            props.update(
                {
                    "u": draw(st.sampled_from(["A", "B", "Q"])),
                    "v": draw(st.sampled_from(["A", "B"])),
                }
            )
            props["length_km"] = draw(st.one_of(st.none(), st.floats(-5, 50), st.just("far")))
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    text = json.dumps({"type": "FeatureCollection", "features": features})
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text, False


def test_fuzz_geojson() -> None:
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(case=geojson_documents())
    def prop(case: tuple[str, bool]) -> None:
        outcomes[_read(case[0], ".geojson", valid=case[1])] += 1

    prop()
    _check_mix(outcomes)


# --------------------------------------------------------------------------- raw bytes, any suffix
def test_fuzz_raw_bytes() -> None:
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(
        data=st.binary(min_size=0, max_size=200),
        suffix=st.sampled_from([".csv", ".json", ".graphml", ".gml", ".txt", ".geojson", ".xyz", ""]),
    )
    def prop(data: bytes, suffix: str) -> None:
        outcomes[_read(data, suffix, valid=False)] += 1

    prop()
    # random bytes are almost never a network: nearly all must be rejected (none may crash)
    _check_mix(outcomes, min_valid=0.0, min_rejected=0.9)


# --------------------------------------------------------------------------- a large file
def test_large_csv_reads(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    lat = rng.uniform(-60, 60, n)
    lon = rng.uniform(-170, 170, n)
    body = "\n".join(f"S{i},{float(a)!r},{float(b)!r}" for i, (a, b) in enumerate(zip(lat, lon, strict=True)))
    path = tmp_path / "big.csv"
    path.write_text("name,lat,lon\n" + body + "\n", encoding="utf-8")
    net = read_network(path)
    assert len(net.sites) == n
    assert net.sites["lat"].to_numpy().tolist() == lat.tolist()
    # one bad row among 20 000 is still found and named
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[12_345] = "S7,1000,0"  # row 12345: bad latitude and a duplicate of row 8
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        read_network(path)
    except ValidationError as exc:
        text = str(exc)
    else:  # pragma: no cover - the assertion below reports it
        text = ""
    assert "row 12345 (line 12346): latitude 1000 is outside" in text
    assert "row 12345 (line 12346): duplicate site name 'S7' (also at row 8 (line 9))" in text


def test_many_problems_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("name,lat,lon\n" + "".join(f"S{i},abc,0\n" for i in range(500)), encoding="utf-8")
    try:
        read_network(path)
    except ValidationError as exc:
        problems = exc.problems
    else:  # pragma: no cover
        problems = []
    assert len(problems) == 51
    assert "row 1 (line 2)" in problems[0].where
    assert "450 more problem(s)" in problems[-1].what
