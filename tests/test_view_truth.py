"""The page, prints and downloads tell the same truth (issue 12).

A category without data is shown as such (never a silent switch to another); prints and
downloads are drawn and counted at the threshold on screen; counts of sites say places for
distinct addresses and services for rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("ACCESS_ATLAS_WARM", "0")

from callbacks.downloads import export_request, prepare_export
from etl._errors import ExportError
from etl.outputs.export import count_places, desert_at, view_text
from tests.test_townhall import demo_geodata, linked_geodata
from viewmodel.data import access_summary, map_options, region_data
from viewmodel.state import encode_state, parse_state

PDFTOTEXT = shutil.which("pdftotext")


@pytest.fixture(scope="module")
def geo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linked_geodata(
        demo_geodata(tmp_path_factory), tmp_path_factory.mktemp("view-truth") / "geodata"
    )


@pytest.fixture(scope="module")
def rd(geo: Path):
    return region_data(geo, "demo")


@pytest.fixture(scope="module")
def options(rd):
    return map_options(rd, ["demo"])


def _pdf_text(path: Path) -> str:
    out = subprocess.run([PDFTOTEXT, str(path), "-"], capture_output=True, text=True, check=True)
    return out.stdout


def _component_text(component) -> str:
    items = component if isinstance(component, list) else [component]

    def plain(c):
        return c.to_plotly_json() if hasattr(c, "to_plotly_json") else str(c)

    return json.dumps(items, default=plain, ensure_ascii=False)


# ---------------------------------------------------------------------------------------
# A category without data


def test_a_category_without_data_is_kept_in_the_url_and_said_so(rd, options) -> None:
    from callbacks.map import page_model
    from layouts import map_page as mp

    # the fictional region has no substance use treatment facility list
    assert "treatment_facility" not in options.categories
    assert options.no_data["treatment_facility"] == "no provider list has treatment facilities"
    state = parse_state("?cat=treatment_facility", options, default_region="demo")
    assert state.category == "treatment_facility"  # not methadone
    assert "cat=treatment_facility" in encode_state(state, options, default_region="demo")
    # an unknown category still falls back
    assert parse_state("?cat=unicorns", options, default_region="demo").category == "methadone"

    model = page_model(rd, state, options, default="demo")
    summary = _component_text(model.summary)
    assert "No data for this region" in summary and "treatment facilit" in summary
    assert "live beyond it, in the desert" not in summary  # no numbers pretending otherwise
    picker = next(
        c for c in _walk(mp.controls(model)) if getattr(c, "id", None) == mp.CATEGORY
    )
    by_value = {o["value"]: o for o in picker.options}
    assert picker.value == "treatment_facility"
    assert not by_value["treatment_facility"].get("disabled")  # the open one stays reachable
    assert "no data for this region" in _component_text(by_value["treatment_facility"]["label"])
    assert not by_value["methadone"].get("disabled")
    legend = _component_text(mp.legend(model))
    assert "no data for this region" in legend and "within" not in legend  # no bands listed
    # the legend callback builds its model without options (callbacks.map.update_legend)
    bare = mp.PageModel(manifest=model.manifest, state=state, options=None, urls={},
                        summary=[], defaults={})  # fmt: skip
    assert _component_text(mp.legend(bare)) == legend
    # from the default view, a no-data category is greyed out with the reason
    default = page_model(rd, parse_state("", options, default_region="demo"), options,
                         default="demo")  # fmt: skip
    picker = next(c for c in _walk(mp.controls(default)) if getattr(c, "id", None) == mp.CATEGORY)
    assert {o["value"]: o.get("disabled") for o in picker.options}["treatment_facility"] is True
    with pytest.raises(ExportError, match="no data for treatment_facility in this region"):
        export_request("pdf", "cat=treatment_facility", options)


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    if isinstance(children, (list, tuple)):
        for child in children:
            yield from _walk(child)
    elif children is not None and hasattr(children, "children"):
        yield from _walk(children)


# ---------------------------------------------------------------------------------------
# Prints and downloads follow the threshold on screen


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext (poppler-utils) is not installed")
def test_slider_at_15_gives_the_same_desert_people_on_the_page_the_pdf_and_the_csv(
    rd, options, tmp_path: Path
) -> None:
    page = access_summary(rd, "methadone", "drive", 15)["focus"]["beyond"]
    configured = access_summary(rd, "methadone", "drive", 30)["focus"]["beyond"]
    people = f"{round(page):,}"
    assert round(page) != round(configured)  # the test can tell the thresholds apart
    cache = tmp_path / "cache"
    query = "cat=methadone&mode=drive&t=15&layers=streets,desert,sites"

    pdf = prepare_export(rd, export_request("pdf", query, options), cache=cache)
    text = _pdf_text(pdf)
    assert f"{people} people" in text
    assert f"{round(configured):,} people" not in text
    assert "Methadone, by car, 15-minute threshold" in text

    sheet = prepare_export(rd, export_request("factsheet", query, options), cache=cache)
    assert people in _pdf_text(sheet)

    zipped = prepare_export(rd, export_request("csv", query, options), cache=cache)
    with zipfile.ZipFile(zipped) as zf:
        deserts = pd.read_csv(zf.open("deserts.csv"))
        meta = json.loads(zf.read("metadata.json"))
        readme = zf.read("README.txt").decode("utf-8")
        areas = pd.read_csv(zf.open("areas.csv"))
    row = deserts[(deserts["category"] == "methadone") & (deserts["mode"] == "drive")].iloc[0]
    assert row["population"] == round(page) and row["threshold_min"] == 15
    assert areas["desert_people_methadone_drive"].sum() == pytest.approx(page, abs=len(areas))
    assert meta["view"]["text"] == "Methadone, by car, 15-minute threshold"
    assert meta["view"]["pairs"][0]["people_in_desert"] == round(page)
    assert "View: Methadone, by car, 15-minute threshold" in readme
    # the same request at another threshold is another file, with the other count
    other = prepare_export(rd, export_request("csv", "cat=methadone&mode=drive&t=30", options),
                           cache=cache)  # fmt: skip
    assert other != zipped
    with zipfile.ZipFile(other) as zf:
        assert pd.read_csv(zf.open("deserts.csv"))["population"].iloc[0] == round(configured)


def test_desert_at_the_configured_threshold_is_the_stored_desert(rd) -> None:
    stored = rd.layer("deserts")
    row = stored[(stored["category"] == "methadone") & (stored["mode"] == "drive")].iloc[0]
    again = desert_at(rd.bundle, "methadone", "drive", float(row["threshold_min"]))
    assert round(again.beyond) == row["population"]
    assert again.geometry.symmetric_difference(row.geometry).area < 1e-3 * row.geometry.area
    assert desert_at(rd.bundle, "methadone", "drive", 15).geometry.area > row.geometry.area
    assert view_text("buprenorphine", "walk", 20) == "Buprenorphine, on foot, 20-minute threshold"


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext (poppler-utils) is not installed")
def test_cli_threshold(geo: Path, rd, tmp_path: Path) -> None:
    from etl.cli import main

    people = f"{round(access_summary(rd, 'methadone', 'drive', 15)['focus']['beyond']):,}"
    out = tmp_path / "map.pdf"
    assert main(["render-map", str(geo / "demo"), str(out), "--category",
                 "methadone", "--layers", "streets,deserts", "--threshold", "15"]) == 0  # fmt: skip
    assert f"{people} people" in _pdf_text(out)
    sheet = tmp_path / "sheet.pdf"
    assert main(["fact-sheet", str(geo / "demo"), str(sheet), "--category",
                 "methadone", "--mode", "drive", "--threshold", "15"]) == 0  # fmt: skip
    assert people in _pdf_text(sheet)
    assert main(["export", str(geo / "demo"), "--format", "csv", "--layers",
                 "deserts", "--category", "methadone", "--mode", "drive", "--threshold", "15",
                 "--out", str(tmp_path / "x")]) == 0  # fmt: skip
    with zipfile.ZipFile(next((tmp_path / "x").glob("*.zip"))) as zf:
        assert f"{pd.read_csv(zf.open('deserts.csv'))['population'].iloc[0]:,}" == people


# ---------------------------------------------------------------------------------------
# Places and services


def test_places_are_distinct_addresses_and_services_are_rows() -> None:
    providers = pd.DataFrame({
        "category": ["buprenorphine", "buprenorphine", "methadone", "buprenorphine",
                     "syringe_services"],
        "address": ["240 Parsons Ave.", "240  PARSONS AVE", "240 Parsons Ave", "11 Main St", None],
        "zip": ["43215", "43215-1234", "43215", "43215", None],
        "node_drive": [1, 1, 1, 2, 9],
    })  # fmt: skip
    assert count_places(providers) == (3, 5)  # Parsons Ave, Main St, the hidden site's node
    assert count_places(providers, "buprenorphine") == (2, 3)


def test_fact_sheet_counts_places_and_services(rd) -> None:
    from etl.outputs.render import key_numbers

    card = next(c for c in key_numbers(rd.bundle) if "offering care" in c["text"])
    places, services = count_places(rd.layer("providers"))
    assert card["number"] == f"{places:,}"
    assert card["text"].startswith("places (distinct addresses)")
    assert re.match(rf"{services:,} services: ", card["note"])
