"""Abandoned temporary export folders (a worker killed mid-build) are removed; nothing else is."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

os.environ.setdefault("ACCESS_ATLAS_WARM", "0")

from callbacks import downloads


def _age(path: Path, seconds: float) -> None:
    """Set the modification time of a path and everything under it ``seconds`` back."""
    then = path.stat().st_mtime - seconds
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (then, then), follow_symlinks=False)


def test_stale_temp_folders_go_and_everything_else_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / ".cache" / "exports"
    build = cache / "demo" / "20260101T000000-abc"
    stale = build / ".pdf-k2j4x9"
    stale.mkdir(parents=True)
    (stale / "map.pdf").write_bytes(b"%PDF-half")
    stale_file = build / ".csv-tmp.zip"
    stale_file.write_bytes(b"PK")
    fresh = build / ".png-fresh01"
    fresh.mkdir()
    (fresh / "map.png").write_bytes(b"\x89PNG")
    done = build / "csv-0123456789abcdef"
    done.mkdir()
    (done / "export.zip").write_bytes(b"PK")
    outside = tmp_path / ".old-hidden"  # beside the cache, not in it
    outside.mkdir()
    link = build / ".linked"
    link.symlink_to(outside, target_is_directory=True)
    for p in (stale, stale_file, done, outside):
        _age(p, 3600)
    os.utime(link, (1, 1), follow_symlinks=False)
    # a stale folder whose file is still being written is not abandoned
    busy = build / ".gpkg-busy"
    busy.mkdir()
    (busy / "part.gpkg").write_bytes(b"x")
    os.utime(busy, (1, 1))

    with caplog.at_level(logging.INFO, logger="callbacks.downloads"):
        removed = downloads.clean_stale_temp(cache)

    assert removed == 2
    assert not stale.exists() and not stale_file.exists()
    assert fresh.is_dir() and (fresh / "map.png").exists()
    assert busy.is_dir() and (done / "export.zip").exists()
    assert link.is_symlink() and outside.is_dir()
    lines = [r.getMessage() for r in caplog.records if "export cache" in r.getMessage()]
    assert lines == ["export cache: removed 2 abandoned temporary export folders"]
    assert downloads.clean_stale_temp(cache) == 0  # nothing left to remove
    assert downloads.clean_stale_temp(tmp_path / "missing") == 0


def test_the_time_limit_is_by_modification_time(tmp_path: Path) -> None:
    cache = tmp_path / "exports"
    temp = cache / "demo" / "b1" / ".shp-abc"
    temp.mkdir(parents=True)
    mtime = temp.stat().st_mtime
    assert downloads.clean_stale_temp(cache, max_age_s=600, now=mtime + 599) == 0
    assert temp.is_dir()
    assert downloads.clean_stale_temp(cache, max_age_s=600, now=mtime + 601) == 1
    assert not temp.exists()


def test_start_up_sweeps_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flask

    geo = tmp_path / "geodata"
    temp = geo / ".cache" / "exports" / "demo" / "b1" / ".factsheet-zz"
    temp.mkdir(parents=True)
    _age(temp, 3600)
    monkeypatch.setattr(downloads, "_SWEPT", {})
    downloads.configure(cache_dir=None)
    downloads.register_download_routes(flask.Flask("t"), lambda: geo)
    assert not temp.exists()
