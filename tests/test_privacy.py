"""Tests for etl.bundle.privacy: suppression (complementary too), unstable rates, generalizing."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from etl._errors import BundleError, InputError
from etl.bundle.privacy import (
    assert_no_exact_points,
    assert_no_small_counts,
    generalize_points,
    mark_unstable,
    suppress_counts,
)

# --------------------------------------------------------------------------------------------
# an attacker: how far can each hidden cell be pinned down from what is shown?


def _relations(n, m, n_parts, groups, has_total):
    """Independent re-statement of the published relations (rows; columns within groups)."""
    flat = np.arange(n * m).reshape(n, m)
    rel = []
    if has_total:
        for i in range(n):
            rel.append((list(flat[i, :n_parts]), int(flat[i, n_parts])))
    keys = [0] * n if groups is None else list(groups)
    for j in range(m):
        for g in sorted(set(keys)):
            members = [int(flat[i, j]) for i in range(n) if keys[i] == g]
            if len(members) > 1:  # a one-row group's total is the cell itself
                rel.append((members, None))
    return rel


def _ranges(true: np.ndarray, hidden: np.ndarray, relations) -> dict[int, tuple[float, float]]:
    """Min and max of every hidden cell over all non-negative tables matching what is shown.

    A group total counts as published when it is 10 or more (a smaller one is suppressed
    where it is shown).
    """
    t, h = true.ravel(), hidden.ravel()
    var = {int(k): i for i, k in enumerate(np.flatnonzero(h))}
    rows, rhs = [], []
    for parts, total in relations:
        coef = np.zeros(len(var))
        known = 0.0
        terms = [(p, 1.0) for p in parts] + ([(total, -1.0)] if total is not None else [])
        if total is None:
            if t[parts].sum() < 10:
                continue
            known -= t[parts].sum()
        for cell, sign in terms:
            if h[cell]:
                coef[var[cell]] += sign
            else:
                known += sign * t[cell]
        if coef.any():
            rows.append(coef)
            rhs.append(-known)
    out = {}
    for cell, i in var.items():
        c = np.zeros(len(var))
        c[i] = 1.0
        kw = {"A_eq": np.array(rows), "b_eq": np.array(rhs)} if rows else {}
        lo = linprog(c, bounds=(0, None), method="highs", **kw)
        hi = linprog(-c, bounds=(0, None), method="highs", **kw)
        assert lo.status == 0
        out[cell] = (lo.fun, np.inf if hi.status == 3 else -hi.fun)
    return out


# --------------------------------------------------------------------------------------------
# suppress_counts


def test_primary_and_complementary_in_one_group():
    df = pd.DataFrame({"deaths": [0, 5, 12, 30], "rate_per_100k": [0.0, 4.1, 9.9, 25.0]})
    out = suppress_counts(df, count_cols=["deaths"])
    assert out["deaths"].tolist() == [0, pd.NA, pd.NA, 30]
    assert out["suppressed"].tolist() == [False, True, True, False]
    # the rate of a suppressed count is gone with it
    assert out["rate_per_100k"].isna().tolist() == [False, True, True, False]
    assert str(out["deaths"].dtype) == "Int64"
    # 47 - 30 - 0 = 17 is all a reader can derive: the 5 and the 12 together
    assert df["deaths"].sum() - 30 - 0 == 17


def test_two_small_cells_whose_sum_is_small_take_a_third():
    # 3 + 4 = 7 could be read off the group total (50 - 43); so 43 goes too
    df = pd.DataFrame({"deaths": [3, 4, 43]})
    out = suppress_counts(df, count_cols=["deaths"])
    assert out["suppressed"].tolist() == [True, True, True]


def test_small_group_total_is_not_published_so_no_complement():
    df = pd.DataFrame({"deaths": [0, 4, 0, 0], "g": ["a", "a", "b", "b"]})
    out = suppress_counts(df, count_cols=["deaths"], group_col="g")
    assert out["suppressed"].tolist() == [False, True, False, False]


def test_groups_are_independent():
    df = pd.DataFrame({"deaths": [7, 50, 60, 11, 12, 13], "period": ["2020"] * 3 + ["2021"] * 3})
    out = suppress_counts(df, count_cols=["deaths"], group_col="period")
    assert out["suppressed"].tolist() == [True, True, False, False, False, False]


def test_row_totals_hide_the_total_and_a_partner():
    df = pd.DataFrame(
        {"male": [4, 30, 12], "female": [0, 25, 14], "total": [4, 55, 26], "g": [1, 1, 1]}
    )
    out = suppress_counts(df, count_cols=["male", "female"], total_col="total")
    # row 0: 4 and its total 4 are both 1-9
    assert out.loc[0, "male_suppressed"] and out.loc[0, "total_suppressed"]
    assert out["male"].isna().sum() >= 2 and out["total"].isna().sum() >= 2
    shown = out[["male", "female", "total"]].to_numpy(dtype="float64", na_value=np.nan)
    assert not ((shown > 0) & (shown < 10)).any()


def test_publisher_suppressed_rows_stay_suppressed_and_count_as_unknown():
    df = pd.DataFrame(
        {"deaths": pd.array([pd.NA, 40, 55], dtype="Int64"), "suppressed": [True, False, False]}
    )
    out = suppress_counts(df, count_cols=["deaths"])
    # one unknown next to a published group total: 40 is suppressed as its complement
    assert out["suppressed"].tolist() == [True, True, False]


def test_missing_counts_are_unknown_but_not_flagged():
    # the publisher's "Missing": not a suppression, but a reader cannot see it either
    df = pd.DataFrame({"deaths": pd.array([pd.NA, 40, 55], dtype="Int64"), "suppressed": False})
    out = suppress_counts(df, count_cols=["deaths"])
    assert out["suppressed"].tolist() == [False, True, False]
    assert out["deaths"].isna().tolist() == [True, True, False]


def test_a_table_of_rates_only_hides_only_its_derivable_small_counts():
    # modelled rates: estimates, no count published, so no total exists to subtract from;
    # 31.0 per 100,000 of 5,940 people derives 2 deaths (hidden), 48.2 of 49,458 derives 24
    df = pd.DataFrame(
        {
            "deaths": pd.array([pd.NA, pd.NA, pd.NA], dtype="Int64"),
            "rate_per_100k": [48.2, 31.0, 39.9],
            "population": [49_458, 5_940, 390_357],
            "g": ["oeps"] * 3,
            "modelled": True,
        }
    )
    kw = {"count_cols": ["deaths"], "group_col": "g", "population_col": "population"}
    out = suppress_counts(df, **kw, estimate_col="modelled")
    assert out["rate_per_100k"].isna().tolist() == [False, True, False]
    assert out["rate_per_100k"].iloc[0] == pytest.approx(48.2)
    # exact (crude) rates derive exact counts whose total may be published: 24 is the complement
    out = suppress_counts(df, **kw)
    assert out["rate_per_100k"].isna().tolist() == [True, True, False]
    # and so does one published count beside the estimates
    with_count = df.assign(deaths=pd.array([pd.NA, pd.NA, 156], dtype="Int64"))
    out = suppress_counts(with_count, **kw, estimate_col="modelled")
    assert out["rate_per_100k"].isna().tolist() == [True, True, False]


def test_fractional_estimates_below_ten_are_suppressed():
    df = pd.DataFrame({"deaths_inside": [4.6, 0.0, 120.5, 33.2]})
    out = suppress_counts(df, count_cols=["deaths_inside"])
    assert out["suppressed"].tolist() == [True, False, False, True]
    assert out["deaths_inside"].dtype == np.float64


def test_bad_counts_are_refused():
    with pytest.raises(InputError, match=r"'deaths', row 1: -3"):
        suppress_counts(pd.DataFrame({"deaths": [4, -3]}), count_cols=["deaths"])
    with pytest.raises(InputError, match="'many' is not a count"):
        suppress_counts(pd.DataFrame({"deaths": ["12", "many"]}), count_cols=["deaths"])
    with pytest.raises(InputError, match="no column 'deaths'"):
        suppress_counts(pd.DataFrame({"d": [1]}), count_cols=["deaths"])


cells = st.one_of(st.just(0), st.integers(1, 9), st.integers(10, 80))


@st.composite
def tables(draw):
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1, 3))
    data = {f"c{j}": draw(st.lists(cells, min_size=n, max_size=n)) for j in range(k)}
    df = pd.DataFrame(data)
    with_total = draw(st.booleans())
    if with_total:
        df["total"] = df.sum(axis=1)
    groups = draw(st.one_of(st.none(), st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    if groups is not None:
        df["g"] = groups
    return df, [f"c{j}" for j in range(k)], "total" if with_total else None, groups


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_no_suppressed_value_can_be_recovered(table):
    df, count_cols, total_col, groups = table
    out = suppress_counts(
        df, count_cols=count_cols, total_col=total_col, group_col="g" if groups else None
    )
    cols = count_cols + ([total_col] if total_col else [])
    true = df[cols].to_numpy(dtype="float64")
    shown = out[cols].to_numpy(dtype="float64", na_value=np.nan)
    hidden = np.isnan(shown)
    # nothing from 1 to 9 is shown, and what is shown is the true value
    assert not ((shown > 0) & (shown < 10)).any()
    assert np.array_equal(shown[~hidden], true[~hidden])
    rel = _relations(len(df), len(cols), len(count_cols), groups, total_col is not None)
    # subtraction: no published relation has exactly one unknown
    t = true.ravel()
    for parts, total in rel:
        unknown = int(hidden.ravel()[parts].sum()) + (
            int(hidden.ravel()[total]) if total is not None else 0
        )
        if total is None and t[parts].sum() < 10:
            continue
        assert unknown != 1
    # and no combination of relations pins a hidden cell either; a hidden zero may be
    # pinned at zero (zeros are published anyway: the rule protects counts 1-9)
    for cell, (lo, hi) in _ranges(true, hidden, rel).items():
        if t[cell] == 0 and hi < 1 - 1e-6:
            continue
        assert hi - lo >= 1 - 1e-6, (cell, lo, hi)


# --------------------------------------------------------------------------------------------
# mark_unstable


def test_mark_unstable():
    df = pd.DataFrame(
        {
            "deaths": pd.array([5, 19, 20, None, None], dtype="Int64"),
            "suppressed": [False, False, False, True, False],
            "unstable": [False, False, True, False, False],
        }
    )
    out = mark_unstable(df, "deaths")
    # <20 unstable; publisher's flag kept; suppressed unknown unstable; merely unknown untouched
    assert out["unstable"].tolist() == [True, True, True, True, False]
    assert mark_unstable(df, "deaths", 6)["unstable"].tolist() == [True, False, True, True, False]


# --------------------------------------------------------------------------------------------
# generalize_points


def _sites() -> gpd.GeoDataFrame:
    lon, lat = np.array([-82.99, -83.01, -82.95]), np.array([39.96, 39.98, 40.0])
    return gpd.GeoDataFrame(
        {
            "id": ["a", "b", "c"],
            "name": ["Site A", "Site B", "Site C"],
            "category": "syringe_services",
            "address": ["1 Main St", "2 Oak St", "3 Elm St"],
            "zip": ["43215", "43215", "43201"],
            "lon": lon,
            "lat": lat,
            "snap_node": [10, 11, 12],
            "snap_dist_m": [5.0, 6.0, 7.0],
        },
        geometry=gpd.points_from_xy(lon, lat),
        crs="EPSG:4326",
    ).to_crs("EPSG:32617")


def test_generalize_points_leaves_no_exact_location(tmp_path):
    sites = _sites()
    out = generalize_points(sites, [False, True, False], h3_resolution=8)
    assert out.crs == sites.crs
    assert out["generalized"].tolist() == [False, True, False]
    row = out.iloc[1]
    assert row.geometry.geom_type == "Polygon"
    for col in ("address", "zip", "lon", "lat", "snap_node", "snap_dist_m"):
        assert pd.isna(row[col]), col
    assert row["name"] == "Site B" and row["category"] == "syringe_services"
    # the cell holds the site, and is the cell H3 gives for it
    assert row.geometry.buffer(1e-6).contains(sites.geometry.iloc[1])
    assert row["h3_cell"] == h3.latlng_to_cell(39.98, -83.01, 8)
    area_km2 = row.geometry.area / 1e6
    assert 0.6 < area_km2 < 0.9  # res 8 ≈ 0.74 km²
    # others untouched
    assert out.iloc[0]["address"] == "1 Main St" and out.iloc[0].geometry.geom_type == "Point"
    assert_no_exact_points({"providers": out})
    # columns keep usable types, and the mixed layer writes as GeoParquet
    assert out["lon"].dtype == np.float64 and str(out["snap_node"].dtype) == "Int64"
    out.to_parquet(tmp_path / "providers.parquet")
    back = gpd.read_parquet(tmp_path / "providers.parquet")
    assert back.geometry.geom_type.tolist() == ["Point", "Polygon", "Point"]


def test_generalize_points_refuses_bad_input():
    sites = _sites()
    with pytest.raises(InputError, match="no CRS"):
        generalize_points(sites.set_crs(None, allow_override=True), [True, False, False])
    with pytest.raises(InputError, match="mask"):
        generalize_points(sites, [True])
    poly = sites.copy()
    poly.geometry = poly.buffer(10)
    with pytest.raises(InputError, match="not a point"):
        generalize_points(poly, [True, False, False])


def test_assert_no_exact_points_catches_a_leak():
    out = generalize_points(_sites(), [True, False, False])
    leaked = out.copy()
    leaked.loc[0, "lat"] = 39.96
    with pytest.raises(BundleError, match=r"'providers', column 'lat', row 0"):
        assert_no_exact_points({"providers": leaked})
    pointy = out.copy()
    pointy.geometry = _sites().geometry
    with pytest.raises(BundleError, match="point geometry"):
        assert_no_exact_points({"providers": pointy})


# --------------------------------------------------------------------------------------------
# assert_no_small_counts


def test_assert_no_small_counts_names_layer_and_column():
    layers = {
        "counties": pd.DataFrame({"fips": ["39049"], "deaths": [1520]}),
        "deserts": pd.DataFrame({"category": ["methadone"], "deaths_inside": [4.2]}),
    }
    with pytest.raises(BundleError, match=r"layer 'deserts', column 'deaths_inside', row 0"):
        assert_no_small_counts(layers)
    layers["deserts"] = suppress_counts(layers["deserts"], count_cols=["deaths_inside"])
    assert_no_small_counts(layers)


def test_assert_no_small_counts_catches_a_rate_beside_a_suppressed_count():
    df = pd.DataFrame(
        {
            "deaths": pd.array([None, 40], dtype="Int64"),
            "rate_per_100k": [3.1, 20.0],
            "suppressed": [True, False],
        }
    )
    with pytest.raises(BundleError, match="'rate_per_100k', row 0"):
        assert_no_small_counts({"areas": df})


def test_assert_no_small_counts_ignores_other_numbers():
    df = pd.DataFrame({"minutes": [5], "population": [7], "band": [3], "deaths": [0]})
    assert_no_small_counts({"x": df})


@pytest.mark.shared
def test_ohio_table_after_suppression_hides_every_small_count(franklin):
    from etl.config import OverdoseSource
    from etl.inputs.overdose import read_overdose

    path = franklin / "overdose" / "ohio_opioid_deaths_county_2007-2023.csv"
    raw = read_overdose(OverdoseSource(path=str(path), format="ohio_county"), path)
    small = int(((raw["deaths"] > 0) & (raw["deaths"] < 10)).sum())
    assert small > 100  # Ohio publishes counts from 1 to 9
    out = mark_unstable(suppress_counts(raw, count_cols=["deaths"], group_col="period"), "deaths")
    assert_no_small_counts({"counties": out})
    assert int(out["suppressed"].sum()) >= small
    assert out.loc[out["suppressed"], "rate_per_100k"].isna().all()
    assert out.loc[out["suppressed"], "unstable"].all()
    # in every year, what a reader can derive from the state total is at least 10 deaths
    for _, year in out.groupby("period"):
        hidden = year["suppressed"].to_numpy()
        truth = raw.loc[year.index, "deaths"].to_numpy(dtype=float)
        assert hidden.sum() != 1
        assert hidden.sum() == 0 or truth[hidden].sum() >= 10
    franklin = out[(out["fips"] == "39049") & (out["year"] == 2020)].iloc[0]
    assert franklin["deaths"] == 746 and not franklin["suppressed"]
