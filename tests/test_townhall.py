"""Town-hall mode: saved views (sanitised, atomic, per region), the default sequence and /present.

A session helper builds the fictional demo region (Millbrook County) with the real pipeline
into a temporary folder once; ``tests/test_downloads.py`` reuses it. Tests that save views
use a geodata folder of their own that links to the same build, so the saved views of one
test never leak into another.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("ACCESS_ATLAS_WARM", "0")

from etl._errors import InputError
from tests.dash_support import call as _call
from viewmodel.data import access_summary, map_options, region_data
from viewmodel.saved_views import (
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    View,
    add_view,
    check_region,
    clean_text,
    clean_view,
    default_views,
    load_views,
    parse_views,
    remove_views,
    views_path,
    write_views,
)
from viewmodel.state import parse_state

ROOT = Path(__file__).resolve().parents[1]
_DEMO: dict[str, Path] = {}


def demo_geodata(factory: pytest.TempPathFactory) -> Path:
    """The demo region built once per session (raw inputs generated in the temp folder too)."""
    if "geo" not in _DEMO:
        from etl.config import load_config
        from etl.pipeline import run_build

        root = factory.mktemp("atlas-townhall")
        (root / "configs").mkdir()
        cfg = root / "configs" / "demo.yaml"
        shutil.copy(ROOT / "geodata" / "configs" / "demo.yaml", cfg)
        run_build(load_config(cfg), root / "geodata", progress=False)
        _DEMO["geo"] = root / "geodata"
    return _DEMO["geo"]


def linked_geodata(geo: Path, folder: Path) -> Path:
    """A geodata folder of its own whose ``demo`` links to the session's build."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "demo").symlink_to((geo / "demo").resolve())
    return folder


@pytest.fixture(scope="module")
def geo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_geodata(tmp_path_factory)


@pytest.fixture(scope="module")
def rd(geo: Path):
    return region_data(geo, "demo")


@pytest.fixture(scope="module")
def options(rd):
    return map_options(rd, ["demo"])


# ---------------------------------------------------------------------------------------
# Sanitising
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Walking   to\tcare \n", "Walking to care"),
        ("Bell\x07 and\x00 nulls\u200b", "Bell and nulls"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),  # text, escaped by React
        (None, ""),
        (42, ""),
        ("Cafe\u0301", "Café"),
    ],
)
def test_clean_text(raw: Any, expected: str) -> None:
    assert clean_text(raw, limit=80) == expected


def test_clean_text_cuts_long_text_on_a_word_boundary() -> None:
    text = "word " * 100
    cut = clean_text(text, limit=MAX_TITLE_CHARS)
    assert len(cut) <= MAX_TITLE_CHARS
    assert cut.endswith("word…")


@pytest.mark.parametrize(
    "region", ["", "..", "../etc", "a/b", ".hidden", "x" * 65, "demo\x00", "dé", "a b"]
)
def test_region_names_that_are_not_plain_are_refused(region: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a region name"):
        check_region(region)
    with pytest.raises(InputError):
        views_path(tmp_path, region)


def test_views_path_stays_in_the_saved_folder(tmp_path: Path) -> None:
    path = views_path(tmp_path, "franklin-oh")
    assert path == (tmp_path / "saved" / "franklin-oh" / "views.json").resolve()
    # a saved folder that is a link elsewhere is refused
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "evil").symlink_to(outside)
    with pytest.raises(InputError, match="outside"):
        views_path(tmp_path, "evil")


def test_clean_view_reparses_the_state_for_the_region(options) -> None:
    view = clean_view(
        {
            "title": "  Walking\n to buprenorphine ",
            "text": "x" * 1000,
            "query": "/?region=elsewhere&cat=buprenorphine&mode=walk&t=999&layers=desert,bogus"
            "&q=%3Cb%3E#frag",
        },
        options,
        region="demo",
    )
    assert view is not None
    assert view.title == "Walking to buprenorphine"
    assert len(view.text) <= MAX_TEXT_CHARS
    assert "region=" not in view.query  # a view belongs to its file's region
    assert view.query.startswith("cat=buprenorphine")
    state = parse_state(view.query, options, default_region="demo")
    assert (state.category, state.mode, state.threshold) == ("buprenorphine", "walk", 20)
    assert state.layers == ("desert",)
    assert clean_view({"title": "  ", "query": ""}, options, region="demo") is None
    assert clean_view("not a mapping", options, region="demo") is None
    assert clean_view({"title": "t", "query": "x" * 5000}, options, region="demo") is None


def test_parse_views_keeps_the_valid_entries(options) -> None:
    doc = {
        "views": [
            {"title": "One", "text": "First.", "query": "cat=pharmacy"},
            {"text": "no title"},
            "junk",
            {"title": "Two", "query": 7},
        ]
    }
    views = parse_views(doc, options, region="demo")
    assert [v.title for v in views] == ["One", "Two"]
    assert views[1].query == ""  # the default state
    assert parse_views({"views": "nope"}, options, region="demo") == []
    assert parse_views([], options, region="demo") == []


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------


def test_write_load_add_remove(tmp_path: Path, options) -> None:
    assert load_views(tmp_path, "demo", options) is None
    a = View("A", "first", "cat=pharmacy")
    b = View("B", "", "cat=buprenorphine&mode=walk")
    c = View("C", "third", "")
    path = write_views(tmp_path, "demo", [a, b])
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == 1 and doc["region"] == "demo"
    assert [v["title"] for v in doc["views"]] == ["A", "B"]
    assert load_views(tmp_path, "demo", options) == [a, b]
    assert add_view(tmp_path, "demo", c, options) == [a, b, c]
    assert remove_views(tmp_path, "demo", [0, 2, 99], options) == [b]
    assert load_views(tmp_path, "demo", options) == [b]
    # no temporary files left behind; the lock file is hidden
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == [".views.lock", "views.json"]
    assert remove_views(tmp_path, "demo", [0], options) == []
    assert not path.exists()  # nothing saved: the default sequence again
    assert load_views(tmp_path, "demo", options) is None


def test_a_corrupt_file_shows_the_defaults_and_is_set_aside_on_save(
    tmp_path: Path, options
) -> None:
    path = views_path(tmp_path, "demo")
    path.parent.mkdir(parents=True)
    path.write_text("{not json", encoding="utf-8")
    assert load_views(tmp_path, "demo", options) is None
    views = add_view(tmp_path, "demo", View("New", "", ""), options)
    assert [v.title for v in views] == ["New"]
    aside = [p for p in path.parent.iterdir() if p.name.startswith("views.corrupt-")]
    assert len(aside) == 1 and aside[0].read_text(encoding="utf-8") == "{not json"


def test_too_many_views_are_refused(tmp_path: Path, options, monkeypatch) -> None:
    import viewmodel.saved_views as av

    monkeypatch.setattr(av, "MAX_VIEWS", 2)
    add_view(tmp_path, "demo", View("1", "", ""), options)
    add_view(tmp_path, "demo", View("2", "", ""), options)
    with pytest.raises(InputError, match="already has 2 saved views"):
        add_view(tmp_path, "demo", View("3", "", ""), options)
    assert len(load_views(tmp_path, "demo", options)) == 2


# ---------------------------------------------------------------------------------------
# The default sequence
# ---------------------------------------------------------------------------------------


def test_default_views_carry_the_bundles_numbers(rd, options) -> None:
    views = default_views(rd, options)
    assert [v.title for v in views] == [
        "Millbrook County (fictional): where care is",
        "Opioid treatment program (methadone): the desert by car",
        "Buprenorphine prescriber on foot",
        "Where the desert meets a zoning barrier",
    ]
    n_sites = len(rd.layer("providers"))
    addresses = rd.layer("providers")["address"]
    n_places = addresses.str.lower().nunique() + addresses.isna().sum()  # hidden: one each
    assert views[0].text.startswith(
        f"{n_places:,} places (distinct addresses) offer {n_sites:,} services"
    )
    drive = access_summary(rd, "methadone", "drive", 30)
    beyond = round(drive["focus"]["beyond"] + drive["focus"]["no_route"])
    assert f"{beyond:,} people" in views[1].text
    assert "30 minutes' drive" in views[1].text
    walk = access_summary(rd, "buprenorphine", "walk", 20)
    assert f"{round(walk['focus']['beyond'] + walk['focus']['no_route']):,} people" in views[2].text
    assert "a 20-minute walk" in views[2].text
    assert f"{beyond:,} people in this desert" in views[3].text
    states = [parse_state(v.query, options, default_region="demo") for v in views]
    assert states[0].layers == ("streets", "sites")
    assert (states[1].category, states[1].mode, states[1].sites) == (
        "methadone",
        "drive",
        ("methadone",),
    )
    assert (states[2].category, states[2].mode, states[2].threshold) == (
        "buprenorphine",
        "walk",
        20,
    )
    assert "barriers" in states[3].layers and "desert" in states[3].layers


# ---------------------------------------------------------------------------------------
# The app: /present, the map page's panels, the save callback
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def views_geo(geo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linked_geodata(geo, tmp_path_factory.mktemp("views") / "geodata")


@pytest.fixture
def client(views_geo: Path, monkeypatch: pytest.MonkeyPatch):
    import app as atlas_app
    import callbacks.map as map_callbacks
    from viewmodel import editing

    map_callbacks.configure(geodata=views_geo, default_region="demo")
    saved = views_geo / "saved"
    shutil.rmtree(saved, ignore_errors=True)
    # Saving is for editors (viewmodel/editing.py): this client is one.
    monkeypatch.setenv(editing.TOKEN_ENV, "test-editor-token")
    editing.WRITES.clear()
    c = atlas_app.server.test_client()
    c.environ_base["HTTP_X_ATLAS_EDITOR_TOKEN"] = "test-editor-token"
    yield c
    shutil.rmtree(saved, ignore_errors=True)




def _page(client, search: str = "", path: str = "/") -> dict[str, Any]:
    resp = _call(
        client,
        [("page", "children")],
        [("url", "pathname", path)],
        [("url", "search", search), ("atlas-rendered", "data", None)],
    )
    return resp["page"]["children"]


def _text(component: Any) -> str:
    if isinstance(component, dict):
        return _text(component.get("props", {}).get("children")) if "props" in component else ""
    if isinstance(component, list):
        return " ".join(_text(c) for c in component)
    return "" if component is None else str(component)


def _ids(component: Any, out: set[str]) -> set[str]:
    if isinstance(component, dict):
        props = component.get("props", {})
        if isinstance(props.get("id"), str):
            out.add(props["id"])
        for v in props.values():
            _ids(v, out)
    elif isinstance(component, list):
        for c in component:
            _ids(c, out)
    return out


def _deck(page: dict[str, Any]) -> dict[str, Any]:
    return json.loads(page["props"]["data-deck"])


def test_present_page_shows_the_default_sequence(client) -> None:
    page = _page(client, "?region=demo", "/present")
    deck = _deck(page)
    assert len(deck["views"]) == 4 and deck["index"] == 0 and deck["region"] == "demo"
    text = _text(page)
    assert "1 / 4" in text and "4 / 4" in text
    assert "Fictional data" in text
    assert "desert beyond 30 min" in text  # the threshold beside the numbers
    second = deck["views"][1]
    surface = second["props"]["present-layer-surface"]
    assert surface["url"].endswith(
        f"bands/methadone/drive.geojson?v={region_data(client_geo(), 'demo').build_id}"
    )
    assert surface["hideout"]["threshold"] == 30 and surface["hideout"]["desert"] is True
    assert second["props"]["present-layer-sites"]["hideout"]["cats"] == ["methadone"]
    assert (
        second["href"].startswith("/?region=demo&cat=methadone") or "region=demo" in second["href"]
    )
    assert deck["views"][0]["viewport"]["bounds"]
    third = deck["views"][2]["props"]["present-layer-surface"]
    assert "buprenorphine/walk" in third["url"] and third["hideout"]["threshold"] == 20
    assert deck["views"][3]["props"]["present-layer-barriers"]["hideout"]["show"] is True


def client_geo() -> Path:
    import callbacks.map as map_callbacks

    return map_callbacks.geodata_dir()


def test_present_page_uses_ids_no_map_page_callback_listens_to(client) -> None:
    import app as atlas_app

    page = _page(client, "?region=demo&view=2", "/present")
    ids = _ids(page, {"url", "page", "atlas-rendered"})
    assert "present-map" in ids and "present-layer-offline-tiles" in ids
    # Dash reports an error when some but not all inputs of a callback are on the page.
    for cb in atlas_app.app.callback_map.values():
        inputs = {d["id"] for d in cb["inputs"] if isinstance(d["id"], str)}
        present = inputs & ids
        assert not present or present == inputs, (cb["inputs"], present)


@pytest.mark.parametrize(
    ("query", "index"), [("&view=3", 2), ("&view=99", 3), ("&view=x", 0), ("", 0)]
)
def test_present_opens_at_the_view_in_the_link(client, query: str, index: int) -> None:
    page = _page(client, f"?region=demo{query}", "/present")
    assert _deck(page)["index"] == index
    slides = [
        c for c in _walk(page) if str(c.get("props", {}).get("id", "")).startswith("present-slide-")
    ]
    shown = [s["props"]["id"] for s in slides if not s["props"].get("hidden")]
    assert shown == [f"present-slide-{index}"]


def _walk(component: Any):
    if isinstance(component, dict):
        yield component
        for v in component.get("props", {}).values():
            yield from _walk(v)
    elif isinstance(component, list):
        for c in component:
            yield from _walk(c)


def test_present_for_an_unknown_region_falls_back_to_the_default(client) -> None:
    page = _page(client, "?region=../../etc", "/present")
    assert _deck(page)["region"] == "demo"


def test_map_page_has_the_export_buttons_the_views_form_and_the_default_list(client) -> None:
    page = _page(client, "?region=demo")
    ids = _ids(page, set())
    for kind in ("shp", "gpkg", "geojson", "csv", "png", "pdf", "factsheet"):
        assert f"export-{kind}" in ids
    assert {"view-title", "view-text", "view-save", "views-pick", "views-remove"} <= ids
    assert "layer-offline-tiles" in ids  # the offline basemap on the map page too
    text = _text(page)
    assert "Town-hall mode" in text
    assert "No views saved yet" in text and "Buprenorphine prescriber on foot" in text


def test_save_and_remove_views_through_the_callback(client) -> None:
    outputs = [
        ("view-status", "children"),
        ("views-list", "children"),
        ("view-title", "value"),
        ("view-text", "value"),
    ]
    state = [
        ("view-title", "value", "  Walking\x00 to buprenorphine "),
        ("view-text", "value", "Half the county walks more than 20 minutes."),
        ("share-link", "href", "/?cat=buprenorphine&mode=walk&t=25&lat=40.0&lon=-40.0&z=13"),
        ("views-pick", "value", []),
        ("atlas-region", "data", {"region": "demo"}),
        ("editor-token", "value", None),  # the client's header carries the token
    ]
    resp = _call(
        client,
        outputs,
        [("view-save", "n_clicks", 1), ("views-remove", "n_clicks", 0)],
        state,
        changed="view-save.n_clicks",
    )
    assert "Saved as view 1" in _text(resp["view-status"]["children"])
    assert resp["view-title"]["value"] == "" and resp["view-text"]["value"] == ""
    assert "1 saved view" in _text(resp["views-list"]["children"])
    doc = json.loads((client_geo() / "saved" / "demo" / "views.json").read_text(encoding="utf-8"))
    assert doc["views"] == [
        {
            "title": "Walking to buprenorphine",
            "text": "Half the county walks more than 20 minutes.",
            # never the map's centre (after a look-up, the address): viewmodel/saved_views.py
            "query": "cat=buprenorphine&mode=walk&t=25",
        }
    ]
    # town-hall mode now shows the saved view, on the whole region
    deck = _deck(_page(client, "?region=demo", "/present"))
    assert [v["title"] for v in deck["views"]] == ["Walking to buprenorphine"]
    assert deck["views"][0]["viewport"] != {"center": [40.0, -40.0], "zoom": 13}
    # no title: nothing saved
    state[0] = ("view-title", "value", "   ")
    resp = _call(
        client,
        outputs,
        [("view-save", "n_clicks", 2), ("views-remove", "n_clicks", 0)],
        state,
        changed="view-save.n_clicks",
    )
    assert "Give the view a title first" in _text(resp["view-status"]["children"])
    assert "views-list" not in resp
    # remove it
    state[3] = ("views-pick", "value", [0])
    resp = _call(
        client,
        outputs,
        [("view-save", "n_clicks", 2), ("views-remove", "n_clicks", 1)],
        state,
        changed="views-remove.n_clicks",
    )
    assert "Removed 1 view; 0 left" in _text(resp["view-status"]["children"])
    assert "default sequence" in _text(resp["view-status"]["children"])
    assert not (client_geo() / "saved" / "demo" / "views.json").exists()


def test_a_hostile_saved_file_cannot_break_the_page(client) -> None:
    path = client_geo() / "saved" / "demo" / "views.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "views": [
                    {"title": "<img src=x onerror=alert(1)>", "query": "cat=../../etc&t=-1"},
                    {"title": "x" * 500, "text": "\u202eevil", "query": "layers=<script>"},
                ]
            }
        ),
        encoding="utf-8",
    )
    deck = _deck(_page(client, "?region=demo", "/present"))
    assert len(deck["views"]) == 2
    assert len(deck["views"][1]["title"]) <= 80
    text = _text(_page(client, "?region=demo", "/present"))
    assert "\u202e" not in text


def test_dash_serves_its_own_scripts_and_the_page_needs_no_internet(client) -> None:
    import app as atlas_app

    assert atlas_app.app.config.serve_locally is True
    html = client.get("/present?region=demo").data.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert "https://" not in html and "http://" not in html
