"""The parsed geocoding reference, cached by its inputs' SHA-256 and re-used while unchanged."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from etl.config import ReferenceSource, load_config
from etl.controls import cleaned_table, recording
from etl.inputs.geocode import (
    REFERENCE_CACHE_VERSION,
    OfflineGeocoder,
    ReferenceIndex,
    build_reference_index,
    cached_reference_index,
    reference_cache_key,
)
from tests.conftest import CONFIGS

CRS = "EPSG:32617"


def write_refs(tmp_path: Path) -> list[ReferenceSource]:
    """Address points (one cell with a line break) and a GTFS feed with an intersection stop."""
    pts = pd.DataFrame(
        {
            "LSN": ["100 N High St", "120 N High St", "15 E Broad St", "7 Elm Ave\nRear"],
            "X": [-83.0007, -83.0007, -82.9990, -82.9950],
            "Y": [39.9630, 39.9640, 39.9620, 39.9600],
            "ZIP": ["43215", "43215", "43215", "43206"],
        }
    )
    pts.to_csv(tmp_path / "poi.csv", index=False)
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "stops.txt").write_text(
        "stop_id,stop_name,stop_lat,stop_lon\n"
        "1,HIGH ST & BROAD ST,39.9622,-83.0007\n"
        "2,495 METRO PL S,39.9700,-83.0100\n",
        encoding="utf-8",
    )
    (feed / "agency.txt").write_text("agency_name\nTest Transit\n", encoding="utf-8")
    return [
        ReferenceSource(
            path=str(tmp_path / "poi.csv"), columns={"address": "LSN", "lon": "X", "lat": "Y"}
        ),
        ReferenceSource(path=str(feed), format="gtfs"),
        ReferenceSource(
            path=str(tmp_path / "poi.csv"),
            use="centroids",
            columns={"zip": "ZIP", "lon": "X", "lat": "Y"},
        ),
    ]


def assert_same_index(a: ReferenceIndex, b: ReferenceIndex) -> None:
    """Every part of two indexes equal: values, dtypes and the order of every mapping."""
    pd.testing.assert_frame_equal(a.points, b.points, check_exact=True)
    assert a.crs == b.crs
    assert list(a.streets) == list(b.streets)
    assert all(shapely.to_wkb(a.streets[k]) == shapely.to_wkb(b.streets[k]) for k in a.streets)
    for name in ("street_points", "_crossings", "_by_address"):
        x, y = getattr(a, name), getattr(b, name)
        assert set(x) == set(y), name
        for k in x:
            assert x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]), (name, k)
    for name in ("zip_centres", "city_centres", "_by_base", "_by_squashed", "_city_state"):
        assert getattr(a, name) == getattr(b, name), name
        assert list(getattr(a, name)) == list(getattr(b, name)), name
    assert a._bases == b._bases
    assert list(a._by_street) == list(b._by_street)
    for k, p in a._by_street.items():
        q = b._by_street[k]
        assert p.numbers.dtype == q.numbers.dtype and np.array_equal(p.numbers, q.numbers)
        assert np.array_equal(p.x, q.x) and np.array_equal(p.y, q.y)


QUERIES = pd.DataFrame(
    {
        "address": [
            "100 N High St",
            "110 N High St",
            "7 Elm Ave",
            "High St & Broad St",
            "1 Nowhere",
        ],
        "city": ["Columbus"] * 5,
        "state": ["OH"] * 5,
        "zip": ["43215", "43215", "43206", "43215", "43299"],
    }
)


def test_cold_then_warm_gives_the_same_index_and_results(tmp_path: Path) -> None:
    refs = write_refs(tmp_path)
    cache = tmp_path / "cache"
    fresh = build_reference_index(refs, crs=CRS)
    with recording() as cold_ledger:
        cold = cached_reference_index(refs, crs=CRS, cache_dir=cache)
    with recording() as warm_ledger:
        warm = cached_reference_index(refs, crs=CRS, cache_dir=cache)
    assert cold.cache_record["status"] == "built" and not cold.cache_record["used"]
    assert warm.cache_record["status"] == "hit" and warm.cache_record["used"]
    assert warm.cache_record["key"] == cold.cache_record["key"]
    assert [r["role"] for r in warm.cache_record["inputs"]] == [
        f"geocoding.reference.{k}" for k in range(3)
    ]
    assert sorted(p.suffix for p in cache.iterdir()) == [".npz", ".parquet"]  # no temp files
    assert_same_index(fresh, cold)
    assert_same_index(fresh, warm)
    expect = OfflineGeocoder(fresh).geocode(QUERIES)
    assert (expect["geocode_quality"] != "").sum() >= 3
    pd.testing.assert_frame_equal(OfflineGeocoder(warm).geocode(QUERIES), expect, check_exact=True)
    # the line break cleaned in poi.csv is recorded on a warm run too, as on a cold one
    assert len(cleaned_table(cold_ledger.rows)) >= 1
    pd.testing.assert_frame_equal(cleaned_table(warm_ledger.rows), cleaned_table(cold_ledger.rows))
    assert warm_ledger.inputs == cold_ledger.inputs


def test_key_follows_files_settings_and_crs(tmp_path: Path) -> None:
    refs = write_refs(tmp_path)
    key, inputs = reference_cache_key(refs, crs=CRS)
    assert key == reference_cache_key(refs, crs=CRS)[0]
    assert len(inputs) == 3 and all(len(r["sha256"]) == 64 for r in inputs)
    assert reference_cache_key(refs, crs="EPSG:32616")[0] != key
    assert reference_cache_key(refs[:2], crs=CRS)[0] != key
    moved = [refs[0].model_copy(update={"source": "another label"}), *refs[1:]]
    assert reference_cache_key(moved, crs=CRS)[0] != key
    # an explicit crs is read differently from the default even when equal
    explicit = [ReferenceSource(**{**refs[0].model_dump(), "crs": "EPSG:4326"}), *refs[1:]]
    assert reference_cache_key(explicit, crs=CRS)[0] != key
    (tmp_path / "feed" / "agency.txt").write_text("agency_name\nOther\n", encoding="utf-8")
    assert reference_cache_key(refs, crs=CRS)[0] != key
    (tmp_path / "poi.csv").write_text("LSN,X,Y,ZIP\n", encoding="utf-8")
    assert reference_cache_key(refs, crs=CRS)[0] != key
    (tmp_path / "poi.csv").unlink()
    assert reference_cache_key(refs, crs=CRS) is None


def test_a_changed_input_is_rebuilt(tmp_path: Path) -> None:
    refs = write_refs(tmp_path)
    cache = tmp_path / "cache"
    first = cached_reference_index(refs, crs=CRS, cache_dir=cache)
    poi = tmp_path / "poi.csv"
    poi.write_text(poi.read_text(encoding="utf-8") + '"9 Oak St",-82.99,39.95,43206\n', "utf-8")
    second = cached_reference_index(refs, crs=CRS, cache_dir=cache)
    assert second.cache_record["status"] == "built"
    assert second.cache_record["key"] != first.cache_record["key"]
    assert len(second.points) == len(first.points) + 1
    assert_same_index(second, build_reference_index(refs, crs=CRS))


def _break(npz: Path, parquet: Path, how: str, other: Path) -> None:
    if how == "garbage npz":
        npz.write_bytes(b"not a zip file at all")
    elif how == "truncated npz":
        npz.write_bytes(npz.read_bytes()[:200])
    elif how == "garbage parquet":
        parquet.write_bytes(b"PAR1 nonsense")
    elif how == "foreign npz":  # a valid cache of other references, under this key's name
        shutil.copy(other, npz)
    elif how == "plain npz":
        np.savez(npz, meta=np.array("{}"))
    elif how == "parquet missing":
        parquet.unlink()


@pytest.mark.parametrize(
    "how",
    [
        "garbage npz",
        "truncated npz",
        "garbage parquet",
        "foreign npz",
        "plain npz",
        "parquet missing",
    ],
)
def test_a_corrupt_or_foreign_cache_is_ignored_once_and_rebuilt(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    refs = write_refs(tmp_path)
    cache = tmp_path / "cache"
    other = cached_reference_index(refs[:1], crs=CRS, cache_dir=tmp_path / "other")
    first = cached_reference_index(refs, crs=CRS, cache_dir=cache)
    key = first.cache_record["key"]
    _break(cache / f"{key}.npz", cache / f"{key}.parquet", how, Path(other.cache_record["file"]))
    with caplog.at_level(logging.WARNING, logger="etl.inputs.geocode"):
        again = cached_reference_index(refs, crs=CRS, cache_dir=cache)
    ignored = [r for r in caplog.records if "reference cache" in r.getMessage()]
    assert len(ignored) == 1, [r.getMessage() for r in caplog.records]
    assert "ignored" in ignored[0].getMessage() and "rebuilding" in ignored[0].getMessage()
    assert again.cache_record["status"] == "rebuilt" and not again.cache_record["used"]
    assert_same_index(again, first)
    third = cached_reference_index(refs, crs=CRS, cache_dir=cache)
    assert third.cache_record["status"] == "hit"  # repaired
    assert_same_index(third, first)


def test_an_unwritable_cache_only_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    refs = write_refs(tmp_path)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="etl.inputs.geocode"):
        index = cached_reference_index(refs, crs=CRS, cache_dir=blocked / "geocode")
    assert index.cache_record["status"] == "built"
    assert any("not written" in r.getMessage() for r in caplog.records)
    assert REFERENCE_CACHE_VERSION >= 1


@pytest.fixture(scope="module")
def demo_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The demo region built cold, then its load-providers stage re-run with the cache warm."""
    from etl.bundle.store import Bundle
    from etl.pipeline import run_build

    root = tmp_path_factory.mktemp("demo-cache")
    (root / "configs").mkdir()
    shutil.copy(CONFIGS / "demo.yaml", root / "configs" / "demo.yaml")
    cfg = load_config(root / "configs" / "demo.yaml")
    geo = root / "geo"
    out: dict[str, object] = {"geo": geo}
    run_build(cfg, geo, progress=False)
    cold = Bundle.open(geo / "demo")
    out["cold_manifest"] = cold.manifest
    out["cold_providers"] = cold.read_layer("providers")
    out["cold_cleaned"] = (geo / "demo" / "reports" / "inputs_cleaned.csv").read_bytes()
    run_build(cfg, geo, start="providers", overwrite=True, progress=False)
    warm = Bundle.open(geo / "demo")
    out["warm_manifest"] = warm.manifest
    out["warm_providers"] = warm.read_layer("providers")
    out["warm_cleaned"] = (geo / "demo" / "reports" / "inputs_cleaned.csv").read_bytes()
    return out


def test_demo_providers_equal_with_and_without_the_cache(demo_builds: dict) -> None:
    cold = demo_builds["cold_manifest"]["stages"]["providers"]["geocode_reference"]
    warm = demo_builds["warm_manifest"]["stages"]["providers"]["geocode_reference"]
    assert cold["used"] is False and cold["status"] == "built"
    assert warm["used"] is True and warm["status"] == "hit"
    assert warm["key"] == cold["key"]
    assert Path(warm["file"]).parent == demo_builds["geo"] / ".cache" / "geocode"
    assert warm["inputs"][0]["role"] == "geocoding.reference.0"
    assert len(warm["inputs"][0]["sha256"]) == 64
    pd.testing.assert_frame_equal(
        demo_builds["warm_providers"], demo_builds["cold_providers"], check_exact=True
    )
    assert (demo_builds["warm_providers"]["geocode_quality"].fillna("") != "").any()
    assert demo_builds["warm_cleaned"] == demo_builds["cold_cleaned"]
    assert (
        demo_builds["warm_manifest"]["inputs_cleaned"]
        == demo_builds["cold_manifest"]["inputs_cleaned"]
    )


@pytest.mark.shared
def test_franklin_geocoded_providers_equal_with_and_without_the_cache(
    franklin: Path, tmp_path: Path
) -> None:
    from etl.inputs.providers import load_providers

    cfg = load_config(CONFIGS / "franklin-oh.yaml")
    refs, cache = cfg.geocoding.reference, tmp_path / "geocode"
    cold = cached_reference_index(refs, resolve=cfg.resolve, crs=cfg.crs, cache_dir=cache)
    warm = cached_reference_index(refs, resolve=cfg.resolve, crs=cfg.crs, cache_dir=cache)
    assert (cold.cache_record["status"], warm.cache_record["status"]) == ("built", "hit")
    assert_same_index(cold, warm)
    region = shapely.box(-83.26, 39.80, -82.76, 40.16)  # Franklin County, roughly
    kw = {
        "fuzzy_min_score": cfg.geocoding.fuzzy_min_score,
        "max_hint_km": cfg.geocoding.max_hint_km,
    }
    without = load_providers(cfg, region, geocoder=OfflineGeocoder(cold, **kw))
    with_cache = load_providers(cfg, region, geocoder=OfflineGeocoder(warm, **kw))
    assert (without.providers["geocode_quality"].fillna("") != "").sum() > 100
    pd.testing.assert_frame_equal(with_cache.providers, without.providers, check_exact=True)
    pd.testing.assert_frame_equal(with_cache.rejects, without.rejects, check_exact=True)
