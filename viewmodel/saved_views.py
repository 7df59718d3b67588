"""Saved views for town-hall mode: map states with a title and one sentence, kept per region.

A *view* is a map state (:class:`viewmodel.state.MapState`, stored as the query string
:func:`viewmodel.state.encode_state` writes) with a short title and one sentence, shown like a
slide. A region's views live in ``<geodata>/saved/<region>/views.json``::

    {"format": 1, "region": "demo", "updated_at": "2026-…Z",
     "views": [{"title": "…", "text": "…", "query": "cat=buprenorphine&mode=walk"}]}

Everything read from that file or from a form is sanitised (:func:`clean_text`,
:func:`clean_view`): text loses control characters and is cut to :data:`MAX_TITLE_CHARS` /
:data:`MAX_TEXT_CHARS`, the state is parsed for the region and written again, so a
hand-edited file or a hostile form can only produce a valid view or none. Writes are atomic
(a temporary file in the same folder, then :func:`os.replace`) and serialised between the
server's processes by a lock file.

When a region has no saved views, :func:`default_views` gives a sequence computed from the
bundle: an overview, the methadone desert by car, buprenorphine on foot and where the desert
meets a zoning barrier, each sentence carrying its own numbers and threshold.

A views file is read with limits (:mod:`etl.safe_json`: at most 2 MB, nested at most 32
levels, UTF-8): one that breaks them, or is not JSON, becomes one warning (logged, and a
plain note on the page, :func:`read_views`) and the page works without it. What was read is
kept per file and reused while the file's modification time and size stay the same, so a
page render does not read it again.

Privacy: a view never keeps an address looked up (``q``) or a point (the map centre
``lat``/``lon`` and its zoom ``z``, which after a look-up is the address): they are taken out
of the state when a view is saved, and out of every view read from an older file.

Settings
--------
MAX_VIEWS : int
    Most views kept per region (older ones are refused, not dropped).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from etl._errors import InputError
from etl.categories import CATEGORY_LABELS
from etl.safe_json import UnsafeJsonError, load_file
from viewmodel.state import MapState, Options, default_state, encode_state, parse_state

if TYPE_CHECKING:
    from viewmodel.data import RegionData

logger = logging.getLogger(__name__)

MAX_VIEWS: int = 30
MAX_TITLE_CHARS: Final[int] = 80
MAX_TEXT_CHARS: Final[int] = 280
MAX_QUERY_CHARS: Final[int] = 600
VIEWS_FILE: Final[str] = "views.json"
SAVED_DIR: Final[str] = "saved"
FORMAT: Final[int] = 1
#: Largest views file read (bytes).
MAX_FILE_BYTES: int = 2 * 1024 * 1024
#: Query parameters a saved view never keeps (an address looked up, a point on the map).
PRIVATE_KEYS: Final[frozenset[str]] = frozenset({"q", "lat", "lon", "z"})
#: The save dialog's line about it.
PRIVACY_NOTE: Final[str] = (
    "A saved view keeps the map's settings, never an address you looked up or a point on the "
    "map: it opens on the whole region."
)

#: Documents read, per views file: (mtime_ns, size, inode) -> what it gave.
_READ: dict[str, tuple[tuple[int, int, int], ViewsFile]] = {}
#: Views files refused as links out of the saved folder (logged once each).
_REFUSED: set[tuple[str, str, str]] = set()
_READ_LOCK = threading.Lock()

_REGION: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SPACE: Final[re.Pattern[str]] = re.compile(r"\s+")

#: What one site of each category is called in a sentence ("the nearest pharmacy").
_SITE_NOUNS: Final[dict[str, str]] = {
    "methadone": "opioid treatment program (methadone)",
    "buprenorphine": "buprenorphine prescriber",
    "naltrexone": "naltrexone provider",
    "syringe_services": "syringe services program",
    "pharmacy": "pharmacy",
    "naloxone": "place to get naloxone",
    "treatment_facility": "treatment facility",
}


@dataclass(frozen=True)
class View:
    """One saved view: a title, one sentence and the map state as a query string.

    Attributes
    ----------
    title
        Short title (at most :data:`MAX_TITLE_CHARS`).
    text
        One sentence (at most :data:`MAX_TEXT_CHARS`); may be empty.
    query
        The map state without ``region`` and without the leading ``?`` (defaults left out).
    """

    title: str
    text: str
    query: str

    def as_json(self) -> dict[str, str]:
        """The view as stored in ``views.json``."""
        return {"title": self.title, "text": self.text, "query": self.query}


# ---------------------------------------------------------------------------------------
# Sanitising
# ---------------------------------------------------------------------------------------


def clean_text(text: Any, *, limit: int) -> str:
    """Plain one-line text: no control or format characters, single spaces, at most ``limit``.

    Text cut short ends on a word boundary with an ellipsis. Anything that is not a string
    gives ``""``.
    """
    if not isinstance(text, str):
        return ""
    text = unicodedata.normalize("NFC", text)
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )
    text = _SPACE.sub(" ", kept).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:-") + "…"


def check_region(region: str) -> str:
    """Return ``region`` if it is a plain region name (letters, digits, ``-``, ``_``).

    Raises
    ------
    InputError
        For anything else (path separators, dots, empty, too long).
    """
    if not isinstance(region, str) or not _REGION.match(region):
        msg = (
            f"{region!r} is not a region name: use letters, digits, '-' and '_' "
            "(at most 64 characters), as in 'franklin-oh'"
        )
        raise InputError(msg)
    return region


def state_query(state: MapState, options: Options) -> str:
    """The query string of a state for its region's views (no ``region``, no ``?``)."""
    return encode_state(state, options, default_region=state.region).lstrip("?")


def view_state(view: View, options: Options, *, region: str) -> MapState:
    """The map state of a view, parsed for ``region`` (whatever its query says)."""
    query = _drop_region(view.query)
    return parse_state(query, options, default_region=region).with_(region=region)


def clean_view(raw: Any, options: Options, *, region: str) -> View | None:
    """A valid view from untrusted input (a form or a file entry), or None.

    ``raw`` is a mapping with ``title``, ``text`` and ``query`` (a map-page query string,
    with or without ``?``, or a link such as ``/?cat=…``). The title is required; the state
    is parsed for ``region`` (what makes no sense is dropped) and encoded again.
    """
    if not isinstance(raw, Mapping):
        return None
    title = clean_text(raw.get("title"), limit=MAX_TITLE_CHARS)
    if not title:
        return None
    text = clean_text(raw.get("text"), limit=MAX_TEXT_CHARS)
    query = raw.get("query")
    query = query if isinstance(query, str) else ""
    if len(query) > MAX_QUERY_CHARS:
        return None
    query = query.split("#", 1)[0]
    query = query.split("?", 1)[1] if "?" in query else query
    state = parse_state(_drop_region(query), options, default_region=region)
    state = state.with_(region=region, lat=None, lon=None, zoom=None, query="")
    return View(title=title, text=text, query=state_query(state, options))


def _drop_region(query: str) -> str:
    """A query string without ``region`` nor :data:`PRIVATE_KEYS`.

    A view belongs to its file's region, and never keeps an address or a point.
    """
    parts = [
        p
        for p in query.lstrip("?").split("&")
        if p and p.split("=", 1)[0] != "region" and p.split("=", 1)[0] not in PRIVATE_KEYS
    ]
    return "&".join(parts)


def parse_views(data: Any, options: Options, *, region: str) -> list[View]:
    """The valid views of a ``views.json`` document (invalid entries are dropped and logged)."""
    entries = data.get("views") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        return []
    views = []
    for i, entry in enumerate(entries[: 4 * MAX_VIEWS]):
        view = clean_view(entry, options, region=region)
        if view is None:
            logger.warning(
                "saved views of %s: entry %d has no title or a bad state; skipped", region, i + 1
            )
            continue
        views.append(view)
    return views[:MAX_VIEWS]


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------


def views_path(geodata_dir: str | Path, region: str) -> Path:
    """``<geodata>/saved/<region>/views.json``, checked to stay inside ``<geodata>/saved``.

    Raises
    ------
    InputError
        For a region name that is not plain (see :func:`check_region`).
    """
    check_region(region)
    root = (Path(geodata_dir) / SAVED_DIR).resolve()
    path = (root / region / VIEWS_FILE).resolve()
    if not path.is_relative_to(root):
        # The log has the path (once per link target, not once per page render); the page
        # (and so the public) never sees a server path.
        seen = (str(root), region, str(path))
        with _READ_LOCK:
            first = seen not in _REFUSED
            if first:
                _REFUSED.add(seen)
                while len(_REFUSED) > 256:
                    _REFUSED.pop()
        log = logger.warning if first else logger.debug
        log("views file of %r resolves outside %s (to %s); refused", region, root, path)
        msg = (
            f"the saved views of {region!r} are not used: their file is a link that leads "
            "outside the saved folder; the site's operator should replace it"
        )
        raise InputError(msg)
    return path


@dataclass(frozen=True)
class ViewsFile:
    """What a region's views file gave: its document (None: absent or unusable) and a warning.

    Attributes
    ----------
    data
        The parsed JSON document, or None.
    warning
        One plain sentence for the page when the file exists but cannot be used (no server
        path in it), else None.
    """

    data: Any
    warning: str | None = None


def _read_file(path: Path, region: str) -> ViewsFile:
    """Read and parse one views file (with limits); a failure becomes a warning."""
    what = f"the saved views of {region!r}"
    try:
        data = load_file(path, what=what, max_bytes=MAX_FILE_BYTES)
    except FileNotFoundError:
        return ViewsFile(None)
    except UnsafeJsonError as exc:
        logger.warning("saved views of %s not used: %s", region, exc)
        return ViewsFile(None, f"{exc}; town-hall mode shows the default sequence.")
    except OSError as exc:
        logger.warning("saved views of %s unreadable (%s); showing the defaults", region, exc)
        return ViewsFile(None, f"{what} cannot be read; town-hall mode shows the defaults.")
    return ViewsFile(data)


def read_views_file(geodata_dir: str | Path, region: str) -> ViewsFile:
    """The views file of a region, read once per version (modification time and size)."""
    path = views_path(geodata_dir, region)
    try:
        st = path.stat()
    except FileNotFoundError:
        return ViewsFile(None)
    except OSError as exc:
        logger.warning("saved views of %s unreadable (%s)", region, exc)
        return ViewsFile(None, f"the saved views of {region!r} cannot be read.")
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    key = str(path)
    with _READ_LOCK:
        hit = _READ.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    got = _read_file(path, region)
    with _READ_LOCK:
        _READ[key] = (stamp, got)
        while len(_READ) > 256:
            _READ.pop(next(iter(_READ)))
    return got


def read_views(
    geodata_dir: str | Path, region: str, options: Options
) -> tuple[list[View] | None, str | None]:
    """The saved views of a region (None: none saved or unusable) and a warning for the page.

    Never raises for a bad file: too large, too deep, not UTF-8, not JSON, a link out of
    the saved folder all become ``(None, warning)``.
    """
    try:
        got = read_views_file(geodata_dir, region)
    except InputError as exc:  # a link out of the saved folder
        return None, f"{exc}."
    if got.data is None:
        return None, got.warning
    views = parse_views(got.data, options, region=region)
    logger.debug("read_views: %s: %d saved views", region, len(views))
    return views, None


def load_views(geodata_dir: str | Path, region: str, options: Options) -> list[View] | None:
    """The saved views of a region, or None when none were saved.

    A file that cannot be read or parsed is logged and treated as absent (the default
    sequence is shown); it is set aside when views are next saved. See :func:`read_views`.
    """
    views_path(geodata_dir, region)  # a link out of the saved folder: InputError
    return read_views(geodata_dir, region, options)[0]


def write_views(geodata_dir: str | Path, region: str, views: Sequence[View]) -> Path:
    """Write a region's views atomically; an empty list removes the file.

    Returns
    -------
    pathlib.Path
        The views file.
    """
    path = views_path(geodata_dir, region)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not views:
        path.unlink(missing_ok=True)
        logger.info("write_views: %s: no views left; file removed", region)
        return path
    doc = {
        "format": FORMAT,
        "region": region,
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "views": [v.as_json() for v in views[:MAX_VIEWS]],
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".views-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    logger.info("write_views: %s: %d views", region, len(views))
    return path


@contextlib.contextmanager
def _locked(geodata_dir: str | Path, region: str) -> Iterator[None]:
    """Hold the region's views lock (between processes) for a read-modify-write."""
    path = views_path(geodata_dir, region)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".views.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _set_aside_if_corrupt(path: Path) -> None:
    """Rename a views file that is not usable JSON (kept for a person to look at)."""
    try:
        load_file(path, what="views file", max_bytes=MAX_FILE_BYTES)
    except FileNotFoundError:
        return
    except (OSError, ValueError, InputError):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        aside = path.with_name(f"views.corrupt-{stamp}.json")
        os.replace(path, aside)
        logger.warning("saved views file was not JSON; set aside as %s", aside.name)


def add_view(geodata_dir: str | Path, region: str, view: View, options: Options) -> list[View]:
    """Append a view to a region's saved views; return them all.

    Raises
    ------
    InputError
        When the region already holds :data:`MAX_VIEWS` views.
    """
    with _locked(geodata_dir, region):
        _set_aside_if_corrupt(views_path(geodata_dir, region))
        views = load_views(geodata_dir, region, options) or []
        if len(views) >= MAX_VIEWS:
            msg = f"region {region!r} already has {MAX_VIEWS} saved views; remove one first"
            raise InputError(msg)
        views.append(view)
        write_views(geodata_dir, region, views)
    return views


def remove_views(
    geodata_dir: str | Path, region: str, indices: Sequence[int], options: Options
) -> list[View]:
    """Remove the views at ``indices`` (0-based; unknown ones ignored); return the rest."""
    drop = {int(i) for i in indices}
    with _locked(geodata_dir, region):
        views = load_views(geodata_dir, region, options) or []
        kept = [v for i, v in enumerate(views) if i not in drop]
        if len(kept) != len(views):
            write_views(geodata_dir, region, kept)
    return kept


# ---------------------------------------------------------------------------------------
# The default sequence
# ---------------------------------------------------------------------------------------


def _people(value: float) -> str:
    return f"{round(value):,}"


def _share(part: float, whole: float) -> str:
    if whole <= 0:
        return "0%"
    pct = 100.0 * part / whole
    return "under 1%" if 0 < pct < 1 else f"{pct:.0f}%"


def _how(mode: str, minutes: int) -> str:
    return f"a {minutes}-minute walk" if mode == "walk" else f"{minutes} minutes' drive"


def _pick(options: Options, wanted: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    for category, mode in wanted:
        if f"{category}/{mode}" in options.thresholds:
            return category, mode
    return None


def default_views(rd: RegionData, options: Options) -> list[View]:
    """The sequence shown when a region has no saved views, with numbers from its bundle.

    Overview (every care site), the methadone desert by car, buprenorphine on foot, and
    the desert where a zoning rule blocks new sites; a view is left out when the region
    lacks its category, mode or layer.
    """
    from viewmodel.data import access_summary

    region = rd.region
    base = default_state(region, options)
    title = str(rd.manifest.get("title") or region)
    layers = set(options.layers)

    def keep(*keys: str) -> tuple[str, ...]:
        return tuple(k for k in keys if k in layers)

    views: list[View] = []
    people = float(rd.people_weights().sum()) if rd.has_layer("people") else 0.0
    from etl.outputs.export import count_places

    n_places, n_services = (
        count_places(rd.layer("providers")) if rd.has_layer("providers") else (0, 0)
    )
    kinds = len(options.site_categories)
    overview = base.with_(layers=keep("streets", "sites"), sites=tuple(options.site_categories))
    text = (
        f"{n_places:,} places (distinct addresses) offer {n_services:,} services for opioid "
        f"use disorder here, of {kinds} kinds"
    )
    text += f", for about {_people(people)} residents." if people else "."
    views.append(View(f"{title}: where care is", text, state_query(overview, options)))

    desert_of: dict[tuple[str, str], dict[str, Any]] = {}

    def focused(category: str, mode: str, *keys: str) -> MapState:
        """The map of one category and mode at its default threshold, with these layers."""
        return base.with_(
            category=category,
            mode=mode,
            threshold=options.default_threshold(category, mode),
            layers=keep(*keys),
            sites=tuple(c for c in options.site_categories if c == category),
        )

    def summary(category: str, mode: str, threshold: int) -> dict[str, Any]:
        key = (category, mode)
        if key not in desert_of:
            desert_of[key] = access_summary(rd, category, mode, threshold)
        return desert_of[key]

    first = _pick(options, [("methadone", "drive"), (base.category, base.mode)])
    if first is not None:
        category, mode = first
        t = options.default_threshold(category, mode)
        s = summary(category, mode, t)["focus"]
        state = focused(category, mode, "streets", "bands", "desert", "sites")
        noun = _SITE_NOUNS.get(category, CATEGORY_LABELS.get(category, category))
        if s["beyond"] + s["no_route"] > 0:
            text = (
                f"{_people(s['beyond'] + s['no_route'])} people "
                f"({_share(s['beyond'] + s['no_route'], s['covered'])}) live more than "
                f"{_how(mode, t)} from the nearest {noun}."
            )
        else:
            text = f"Everyone the streets reach lives within {_how(mode, t)} of a {noun}."
        label = CATEGORY_LABELS.get(category, category)
        how = "on foot" if mode == "walk" else "by car"
        views.append(View(f"{label}: the desert {how}", text, state_query(state, options)))

    second = _pick(
        options,
        [
            ("buprenorphine", "walk"),
            ("syringe_services", "walk"),
            ("pharmacy", "walk"),
            ("naloxone", "walk"),
        ],
    )
    if second is not None:
        category, mode = second
        t = options.default_threshold(category, mode)
        s = summary(category, mode, t)["focus"]
        state = focused(category, mode, "streets", "bands", "desert", "sites")
        noun = _SITE_NOUNS.get(category, category)
        out = s["beyond"] + s["no_route"]
        text = (
            f"{_people(out)} people ({_share(out, s['covered'])}) live more than "
            f"{_how(mode, t)} from the nearest {noun}."
        )
        label = CATEGORY_LABELS.get(category, category)
        views.append(View(f"{label} on foot", text, state_query(state, options)))

    if first is not None and "barriers" in layers:
        category, mode = first
        t = options.default_threshold(category, mode)
        full = summary(category, mode, t)
        blocked, beyond = full.get("blocked"), full["focus"]["beyond"] + full["focus"]["no_route"]
        if blocked is not None:
            state = focused(category, mode, "streets", "desert", "barriers", "sites")
            rule = "live where a zoning rule blocks new treatment sites"
            if beyond <= 0:
                text = "No one lives in this desert: every zoning rule could stay as it is."
            elif round(blocked) <= 0:
                text = (
                    f"None of the {_people(beyond)} people in this desert {rule}: new sites "
                    "could open there without changing a rule."
                )
            elif round(blocked) >= round(beyond):
                text = (
                    f"All {_people(beyond)} people in this desert {rule}: there, changing a "
                    "rule would matter."
                )
            else:
                text = (
                    f"{_people(blocked)} of the {_people(beyond)} people in this desert {rule}: "
                    "there, changing a rule would matter."
                )
            views.append(
                View("Where the desert meets a zoning barrier", text, state_query(state, options))
            )
    logger.info("default_views: %s: %d views", region, len(views))
    return views
