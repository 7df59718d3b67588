"""The map's URL state: parsing ignores nonsense, encoding leaves defaults out, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viewmodel.state import (
    DEFAULT_LAYERS,
    MapState,
    Options,
    default_state,
    encode_state,
    parse_state,
    requested_region,
)

OPTIONS = Options(
    regions=("demo", "franklin-oh"),
    categories=("methadone", "buprenorphine", "syringe_services"),
    site_categories=("methadone", "buprenorphine", "syringe_services", "pharmacy"),
    modes=("drive", "walk"),
    layers=("streets", "tiles", "areas", "bands", "desert", "barriers", "sites"),
    filters=("medicaid", "naloxone"),
    units=("areas", "grid"),
    thresholds={"methadone/drive": 30.0, "buprenorphine/walk": 20.0, "syringe_services/walk": 20.0},
    bounds=((39.8, -83.3), (40.2, -82.7)),
)


def test_default_state_uses_the_first_category_with_a_threshold_and_its_threshold() -> None:
    s = default_state("demo", OPTIONS)
    assert (s.category, s.mode, s.threshold) == ("methadone", "drive", 30)
    assert s.layers == tuple(k for k in DEFAULT_LAYERS if k in OPTIONS.layers)
    assert s.sites == OPTIONS.site_categories
    assert s.filters == ()
    assert s.unit == "areas"


def test_a_category_brings_its_own_mode_and_threshold() -> None:
    s = parse_state("?cat=syringe_services", OPTIONS, default_region="demo")
    assert (s.category, s.mode, s.threshold) == ("syringe_services", "walk", 20)
    # a pair without a configured threshold gets 30 minutes
    s = parse_state("cat=syringe_services&mode=drive", OPTIONS, default_region="demo")
    assert (s.mode, s.threshold) == ("drive", 30)


def test_full_query_is_read() -> None:
    q = (
        "?region=franklin-oh&cat=buprenorphine&mode=walk&t=25&layers=sites,desert"
        "&sites=pharmacy,methadone&f=naloxone&unit=grid&op=80&lat=40.0&lon=-83.0&z=14"
        "&q=240%20Parsons%20Ave"
    )
    s = parse_state(q, OPTIONS, default_region="demo")
    assert s == MapState(
        region="franklin-oh",
        category="buprenorphine",
        mode="walk",
        threshold=25,
        layers=("desert", "sites"),
        sites=("methadone", "pharmacy"),
        filters=("naloxone",),
        unit="grid",
        opacity=80,
        lat=40.0,
        lon=-83.0,
        zoom=14,
        query="240 Parsons Ave",
    )


@pytest.mark.parametrize(
    "query",
    [
        "?cat=addicts&mode=teleport&t=banana&layers=nothing,real&unit=planet&op=7&z=99",
        "?t=4&op=101&lat=95&lon=-83&z=12",  # out of range
        "?t=30.5&z=12.5&lat=40&lon=-83",  # not whole numbers; view incomplete
        "?lat=10&lon=10&z=12",  # a view far from the region
        "?sites=unicorns&f=free_pizza&region=../../etc",
        "?t=inf&op=nan&lat=nan&lon=nan&z=nan",
        "?q=" + "x" * 500,
        "%%%&&&==",
    ],
)
def test_nonsense_is_ignored_and_defaults_restored(query: str) -> None:
    s = parse_state(query, OPTIONS, default_region="demo")
    base = default_state("demo", OPTIONS)
    assert s == base


def test_empty_layers_and_sites_mean_none() -> None:
    s = parse_state("?layers=&sites=", OPTIONS, default_region="demo")
    assert s.layers == ()
    assert s.sites == ()


def test_requested_region_only_accepts_known_regions() -> None:
    assert requested_region("?region=franklin-oh", OPTIONS.regions, default="demo") == "franklin-oh"
    assert requested_region("?region=atlantis", OPTIONS.regions, default="demo") == "demo"
    assert requested_region(None, OPTIONS.regions, default="demo") == "demo"


def test_encoding_leaves_defaults_out() -> None:
    base = default_state("demo", OPTIONS)
    assert encode_state(base, OPTIONS, default_region="demo") == ""
    assert encode_state(base, OPTIONS, default_region="franklin-oh") == "?region=demo"
    s = base.with_(threshold=45, layers=("sites",))
    assert encode_state(s, OPTIONS, default_region="demo") == "?t=45&layers=sites"


def test_round_trip_of_a_changed_state() -> None:
    s = default_state("franklin-oh", OPTIONS).with_(
        category="buprenorphine",
        mode="walk",
        threshold=12,
        layers=("streets", "desert", "sites"),
        sites=("pharmacy",),
        filters=("medicaid", "naloxone"),
        unit="grid",
        opacity=40,
        lat=39.96123,
        lon=-83.00456,
        zoom=13,
        query="1000 E Broad St, Columbus",
    )
    text = encode_state(s, OPTIONS, default_region="demo")
    # walking is buprenorphine's default mode here, so it is left out
    assert text.startswith("?region=franklin-oh&cat=buprenorphine&t=12&layers=streets,desert,sites")
    assert parse_state(text, OPTIONS, default_region="demo") == s


@settings(max_examples=60, deadline=None)
@given(
    category=st.sampled_from(OPTIONS.categories),
    mode=st.sampled_from(OPTIONS.modes),
    threshold=st.integers(5, 60),
    layers=st.sets(st.sampled_from(OPTIONS.layers)),
    opacity=st.sampled_from([10, 30, 60, 100]),
    zoom=st.one_of(st.none(), st.integers(3, 18)),
)
def test_any_valid_state_round_trips(
    category: str, mode: str, threshold: int, layers: set[str], opacity: int, zoom: int | None
) -> None:
    ordered = tuple(k for k in OPTIONS.layers if k in layers)
    view = {"lat": 40.01, "lon": -83.02, "zoom": zoom} if zoom is not None else {}
    s = default_state("demo", OPTIONS).with_(
        category=category, mode=mode, threshold=threshold, layers=ordered, opacity=opacity, **view
    )
    assert (
        parse_state(encode_state(s, OPTIONS, default_region="demo"), OPTIONS, default_region="demo")
        == s
    )


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=120))
def test_any_text_parses_to_a_valid_state(text: str) -> None:
    s = parse_state(text, OPTIONS, default_region="demo")
    assert s.category in OPTIONS.categories
    assert s.mode in OPTIONS.modes
    assert 5 <= s.threshold <= 60
    assert set(s.layers) <= set(OPTIONS.layers)
    assert 10 <= s.opacity <= 100
