"""A region whose network comes from Overpass (a stand-in on 127.0.0.1), end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import tests.fixtures_osm as fo
from etl.bundle.store import Bundle
from etl.config import load_config
from etl.pipeline import run_build
from tests.region_fixture import POLYGON, osm_fixture, write_region
from tests.test_osm import StandIn, stand_in  # noqa: F401 - the fixture


def test_online_network_builds_the_same_bundle_as_the_file(
    stand_in: StandIn,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fo, "town", osm_fixture)  # the stand-in now serves Gridton
    offline_cfg = write_region(tmp_path / "offline")
    run_build(load_config(offline_cfg), tmp_path / "geo-offline", progress=False)

    online_cfg = write_region(tmp_path / "online")
    data = yaml.safe_load(online_cfg.read_text())
    data["network"] = {
        "online": True,
        "polygon": [list(p) for p in POLYGON],
        "overpass_url": stand_in.overpass_url,
        "nominatim_url": stand_in.nominatim_url,
    }
    online_cfg.write_text(yaml.safe_dump(data))
    run_build(load_config(online_cfg), tmp_path / "geo-online", progress=False)
    asked = len(stand_in.queries)
    assert asked == 1

    a = Bundle.open(tmp_path / "geo-offline" / "gridton")
    b = Bundle.open(tmp_path / "geo-online" / "gridton")
    for mode in ("drive", "walk"):
        na, nb = a.network(mode), b.network(mode)
        assert np.array_equal(na.osmid, nb.osmid)
        assert np.array_equal(na.tail, nb.tail) and np.array_equal(na.head, nb.head)
        np.testing.assert_allclose(na.time_s, nb.time_s, rtol=0, atol=1e-9)
        np.testing.assert_allclose(
            a.access_arrays(mode)["time_methadone"], b.access_arrays(mode)["time_methadone"]
        )
    assert b.manifest["stages"]["network"]["source"].startswith("overpass")

    # A rebuild answers from the on-disk cache: Overpass is not asked again.
    run_build(load_config(online_cfg), tmp_path / "geo-online", overwrite=True, progress=False)
    assert len(stand_in.queries) == asked
