"""Server-side maps and fact sheets: files, page content (pdftotext), numbers against the bundle."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from etl.bundle.store import Bundle
from etl.cli_export import run
from etl.outputs.export import ExportError
from etl.outputs.render import (
    MAP_LAYERS,
    _nice,
    fact_sheet,
    key_numbers,
    people_times,
    render_map,
    source_line,
    time_edges,
)
from tests.test_export import parse_cli, shared_gridton

DPI = 30  # low resolution keeps the tests fast


def pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                         check=True, text=True)  # fmt: skip
    return " ".join(out.stdout.split())


def pdf_pages(path: Path) -> int:
    if shutil.which("pdfinfo") is None:
        pytest.skip("pdfinfo (poppler-utils) not installed")
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, check=True, text=True)
    pages = [line.split()[-1] for line in info.stdout.splitlines() if line.startswith("Pages:")]
    return int(pages[0])


@pytest.fixture(scope="module")
def gridton(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return shared_gridton(tmp_path_factory)


@pytest.fixture(scope="module")
def real_looking(gridton: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """The same bundle marked not fictional, with an OpenStreetMap input."""
    copy = tmp_path_factory.mktemp("real") / "build"
    shutil.copytree(gridton.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["fictional"] = False
    manifest["title"] = "Testville"
    manifest["inputs"][0].update(source="OpenStreetMap extract", date="2015",
                                 licence="ODbL 1.0, © OpenStreetMap contributors")  # fmt: skip
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return Bundle.open(copy)


def test_map_pdf_has_title_legend_scale_north_sources_and_stamp(gridton, tmp_path):
    out = render_map(gridton, tmp_path / "maps" / "map.pdf", category="methadone", mode="drive",
                     layers=MAP_LAYERS, dpi=DPI)  # fmt: skip
    assert out == tmp_path / "maps" / "map.pdf"
    assert pdf_pages(out) == 1
    text = pdf_text(out)
    for expected in (
        "Opioid treatment program (methadone): travel time by car",
        "Gridton (test fixture) · Methadone, by car, 2-minute threshold",
        "Travel time by car to the nearest",
        "up to 2 min", "2–4 min (beyond threshold)", "no travel time (off the street network)",
        "Streets (from the region's data)", "Region boundary", "Within 4 min by car",
        "Opioid treatment program (methadone) (1)",
        " km", " mi", "N",
        "Sources: test", "Data built", "FICTIONAL DATA",
    ):  # fmt: skip
        assert expected in text, expected
    summary = gridton.manifest["stages"]["access"]["summary"]["methadone_drive"]
    assert f"{summary['people_in_desert']:,} people" in text
    assert "(threshold 2 min)" in text


def test_map_png_size_and_fictional_stamp_pixels(gridton, tmp_path):
    out = render_map(gridton, tmp_path / "map.png", category="buprenorphine", mode="walk",
                     title="Walking to buprenorphine", dpi=DPI)  # fmt: skip
    with Image.open(out) as img:
        assert img.size == (11 * DPI, int(8.5 * DPI))
        rgb = np.asarray(img.convert("RGB")).astype(int)
    # the red stamp's colour (#c0392b) appears in the top-right badge
    badge = rgb[: DPI // 2, -3 * DPI :]
    red = (np.abs(badge - np.array([0xC0, 0x39, 0x2B])) < 25).all(axis=-1)
    assert red.sum() > 20
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50  # a drawn map, not a blank page


def test_real_region_has_no_stamp_and_credits_openstreetmap(real_looking, tmp_path):
    out = render_map(real_looking, tmp_path / "m.pdf", category="methadone", mode="walk", dpi=DPI)
    text = pdf_text(out)
    assert "FICTIONAL" not in text
    assert "Streets © OpenStreetMap contributors (ODbL)" in text
    assert "Testville · Methadone, on foot, 10-minute threshold" in text
    assert "OpenStreetMap" in source_line(real_looking.manifest)


def test_fact_sheet_is_one_page_with_key_numbers_and_thresholds(gridton, tmp_path):
    out = fact_sheet(gridton, tmp_path / "fact.pdf", dpi=DPI)
    assert pdf_pages(out) == 1
    text = pdf_text(out)
    summary = gridton.manifest["stages"]["access"]["summary"]
    assert "Reaching care for opioid use disorder" in text
    assert "FICTIONAL DATA — an invented region" in text
    population = gridton.manifest["stages"]["areas"]["population"]
    assert f"{population:,}" in text and "people live in Gridton" in text
    for key in ("methadone_drive", "methadone_walk", "buprenorphine_walk"):
        entry = summary[key]
        mode = "driving" if key.endswith("drive") else "walking"
        assert f"{entry['people_in_desert']:,}" in text, key
        note = f"threshold: {entry['threshold_min']:g} min {mode}; {entry['people_within']:,}"
        assert f"{note} within reach" in text
    assert "People by travel time" in text
    assert "Methadone program" in text and "Buprenorphine prescriber" in text
    assert "Travel time by car to the nearest methadone program" in text
    assert "How travel time is measured" in text and "Privacy" in text


def test_fact_sheet_png_and_chosen_pair(real_looking, tmp_path):
    out = fact_sheet(real_looking, tmp_path / "fact.png", category="buprenorphine", mode="walk",
                     dpi=DPI)  # fmt: skip
    with Image.open(out) as img:
        assert img.size == (int(8.5 * DPI), 11 * DPI)


def test_key_numbers_are_plain_language_with_thresholds(gridton):
    cards = key_numbers(gridton)
    summary = gridton.manifest["stages"]["access"]["summary"]["methadone_drive"]
    assert cards[0]["text"] == "people live in Gridton (test fixture)"
    assert cards[1]["note"] == "3 services: buprenorphine 2 · methadone 1"
    desert = next(c for c in cards if "2-minute drive" in c["text"])
    assert desert["number"] == f"{summary['people_in_desert']:,}"
    assert desert["note"].startswith("threshold: 2 min driving")
    assert len(cards) <= 6


@pytest.mark.parametrize(("category", "mode"), [("methadone", "drive"), ("buprenorphine", "walk")])
def test_people_times_match_the_pipeline_summary(gridton, category, mode):
    t, w, uncovered = people_times(gridton, category, mode)
    entry = gridton.manifest["stages"]["access"]["summary"][f"{category}_{mode}"]
    ok = np.isfinite(t)
    assert uncovered == pytest.approx(0.0)
    assert round(float(w[ok & (t > entry["threshold_min"])].sum())) == entry["people_in_desert"]
    assert round(float(w[ok & (t <= entry["threshold_min"])].sum())) == entry["people_within"]


def test_time_edges_and_nice_numbers():
    assert time_edges([10, 20, 30], 30) == [0.0, 10.0, 20.0, 30.0, 45.0, 60.0]
    assert time_edges([10, 20, 30], 15) == [0.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0]
    assert time_edges([2, 4, 6], None) == [0.0, 2.0, 4.0, 6.0, 9.0, 12.0]
    assert [_nice(v) for v in (0.37, 3.7, 7.9, 12, 2500)] == [0.2, 2.0, 5.0, 10.0, 2000.0]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"category": "methadone", "mode": "drive", "path": "m.svg"}, r"unsupported file type"),
        ({"category": "opioids", "mode": "drive"}, r"unknown category 'opioids'; valid: methadone"),
        ({"category": "methadone", "mode": "bike"}, r"unknown mode 'bike'; this bundle has: drive"),
        ({"category": "pharmacy", "mode": "drive"},
         r"no travel times for pharmacy by drive .* available: buprenorphine_drive, "),
        ({"category": "methadone", "mode": "drive", "layers": ["roads"]}, r"unknown map layer"),
        ({"category": "methadone", "mode": "drive", "layers": []}, r"no map layer selected"),
    ],
)  # fmt: skip
def test_bad_requests_give_clear_errors(gridton, tmp_path, kwargs, pattern):
    path = tmp_path / kwargs.pop("path", "map.png")
    with pytest.raises(ExportError, match=pattern):
        render_map(gridton, path, dpi=DPI, **kwargs)
    assert not path.exists()


def test_absent_layers_are_skipped(gridton, tmp_path):
    assert "barriers" not in gridton.layer_names
    out = render_map(gridton, tmp_path / "m.png", category="methadone", mode="drive",
                     layers=["barriers", "streets", "grid"], dpi=DPI)  # fmt: skip
    assert out.stat().st_size > 1000


def test_cli_render_map_and_fact_sheet(gridton, tmp_path, capsys):
    geodata = gridton.path.parents[2]
    args = parse_cli(["render-map", "gridton", str(tmp_path / "m.png"), "--category", "methadone",
                      "--mode", "walk", "--layers", "areas,streets,providers", "--dpi", str(DPI),
                      "--title", "Walking to methadone"])  # fmt: skip
    assert run(args, geodata) == 0
    assert Path(capsys.readouterr().out.strip()) == tmp_path / "m.png"
    with Image.open(tmp_path / "m.png") as img:
        assert img.size == (11 * DPI, int(8.5 * DPI))
    args = parse_cli(["fact-sheet", "gridton", str(tmp_path / "f.pdf"), "--dpi", str(DPI)])
    assert run(args, geodata) == 0
    assert "Reaching care for opioid use disorder" in pdf_text(tmp_path / "f.pdf")
    args = parse_cli(["render-map", "gridton", str(tmp_path / "m.png"), "--category", "methadone",
                      "--layers", "roads"])  # fmt: skip
    with pytest.raises(ExportError, match="unknown map layer 'roads'"):
        run(args, geodata)


def test_key_numbers_tell_good_news_once():
    """Pairs where no one is beyond the threshold become one '100%' card, not cards of zeros."""
    reach = {"threshold_min": 30, "people_within": 4000, "people_in_desert": 0}
    summary = {
        "methadone_drive": reach, "naltrexone_drive": reach,
        "buprenorphine_walk": {"threshold_min": 20, "people_within": 1000,
                               "people_in_desert": 3000, "median_minutes": 31.0},
    }  # fmt: skip
    stages = {"areas": {"population": 5000, "areas": 4, "unit": "block group"},
              "access": {"summary": summary}}  # fmt: skip
    stub = SimpleNamespace(manifest={"title": "Testville", "stages": stages})
    cards = key_numbers(stub)  # type: ignore[arg-type]
    assert [c["number"] for c in cards] == ["5,000", "3,000", "100%", "31 min"]
    assert cards[1]["text"] == ("people (75%) live more than a 20-minute walk from the nearest "
                                "buprenorphine prescriber")  # fmt: skip
    assert cards[2]["text"] == (
        "of people live within a 30-minute drive of methadone and naltrexone care"
    )
    assert cards[2]["note"] == "threshold: 30 min driving"
