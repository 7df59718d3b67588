"""Who may write: saving, replacing and removing views and scenarios is for editors only.

The public is read-only. The site's operator turns editing on by setting the environment
variable :data:`TOKEN_ENV` (``ACCESS_ATLAS_EDITOR_TOKEN``) to a secret; an editor types that
token once in the page's "Editor token" field (kept for the browser tab's session), or a
script sends it in the :data:`TOKEN_HEADER` header. Tokens are compared with
:func:`hmac.compare_digest`. Without the variable nobody can write, and the save controls
say how editing is turned on.

Every write attempt, allowed or not, also counts against a per-client limit
(:data:`WRITES_PER_MINUTE` in :data:`WINDOW_S` seconds, in this server process), keyed by
the client's anonymised address (IPv4 /24, IPv6 /48, as the access log writes it), so a
script can neither flood the saved folder nor guess the token quickly.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
import time
from collections import deque
from typing import Any, Final

from etl._errors import AtlasError
from viewmodel.serving import anonymize_ip

logger = logging.getLogger(__name__)

#: Environment variable holding the editor token (unset or empty: nobody may write).
TOKEN_ENV: Final[str] = "ACCESS_ATLAS_EDITOR_TOKEN"
#: Request header a script may send the token in.
TOKEN_HEADER: Final[str] = "X-Atlas-Editor-Token"
#: Writes one client may attempt per window.
WRITES_PER_MINUTE: int = 10
#: The window of the rate limit (seconds).
WINDOW_S: Final[float] = 60.0
#: Clients remembered at most (the oldest are forgotten first).
_MAX_CLIENTS: Final[int] = 10_000

OFF_TEXT: Final[str] = (
    "Saving is turned off on this site: everyone can look, nobody can change the saved "
    f"views or scenarios. The site's operator turns editing on by setting {TOKEN_ENV}; "
    "editors then type that token in “Editor token”."
)
ON_TEXT: Final[str] = (
    "Saving, replacing and removing are for editors: type the editor token (the site's "
    "operator has it) in “Editor token” once."
)


class NotAllowedError(AtlasError):
    """A write without the editor token, or over the rate limit (the message says which)."""


def editing_enabled() -> bool:
    """Whether the operator has set an editor token."""
    return bool(os.environ.get(TOKEN_ENV, "").strip())


def controls_text() -> str:
    """One line for the save controls: how editing is turned on, or that it needs the token."""
    return ON_TEXT if editing_enabled() else OFF_TEXT


def scenario_editing_text() -> str:
    """The What-if panel's line beside "Save"."""
    if editing_enabled():
        return "Saving is for editors: type the editor token under “Town-hall views” once."
    return OFF_TEXT


def _request_token() -> str:
    try:
        import flask

        if flask.has_request_context():
            return flask.request.headers.get(TOKEN_HEADER, "")
    except ImportError:  # pragma: no cover - flask is a dependency of the app
        pass
    return ""


def client_key() -> str:
    """The anonymised address of the client of the current request (``-`` outside one).

    Behind a proxy on this machine (the request comes from a loopback or private address,
    or from no address at all, as gunicorn reports a client on a unix socket behind nginx),
    the first address of ``X-Forwarded-For`` is the client.
    """
    try:
        import flask
    except ImportError:  # pragma: no cover
        return "-"
    if not flask.has_request_context():
        return "-"
    remote = (flask.request.remote_addr or "").strip()
    forwarded = flask.request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
    if forwarded and (not remote or _is_local(remote)):
        remote = forwarded
    return anonymize_ip(remote)


def _is_local(address: str) -> bool:
    """Whether an address is a loopback or private one (a proxy on this machine or network)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key, in this process."""

    def __init__(self, limit: int | None = None, window: float = WINDOW_S) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, *, now: float | None = None) -> bool:
        """Count one event for ``key``; False when it is over the limit (not counted then)."""
        limit = WRITES_PER_MINUTE if self.limit is None else self.limit
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.pop(key, None) or deque()
            while events and now - events[0] >= self.window:
                events.popleft()
            self._events[key] = events  # most recent clients last
            while len(self._events) > _MAX_CLIENTS:
                self._events.pop(next(iter(self._events)))
            if len(events) >= limit:
                return False
            events.append(now)
            return True

    def clear(self) -> None:
        """Forget every client (tests)."""
        with self._lock:
            self._events.clear()


WRITES: Final[RateLimiter] = RateLimiter()


def check_write(token: Any, *, what: str) -> None:
    """Allow one write, or say in plain words why not.

    Parameters
    ----------
    token
        The token typed in the page (or None); the :data:`TOKEN_HEADER` header of the
        request counts too.
    what
        What is being written, for the log (``"save view"``).

    Raises
    ------
    NotAllowedError
        Over the rate limit, editing turned off, or a missing or wrong token.
    """
    key = client_key()
    if not WRITES.allow(key):
        msg = (
            f"Too many changes from your network in a minute (at most {WRITES_PER_MINUTE}); "
            "wait a minute and try again."
        )
        logger.warning("write refused (%s) from %s: over the rate limit", what, key)
        raise NotAllowedError(msg)
    expected = os.environ.get(TOKEN_ENV, "").strip()
    if not expected:
        logger.info("write refused (%s) from %s: editing is turned off", what, key)
        raise NotAllowedError(OFF_TEXT)
    given = token if isinstance(token, str) and token.strip() else _request_token()
    if not hmac.compare_digest(given.strip().encode("utf-8"), expected.encode("utf-8")):
        msg = (
            "Wrong or missing editor token: type the token the site's operator gave you in "
            "“Editor token” to save, replace or remove."
        )
        logger.warning("write refused (%s) from %s: wrong or missing editor token", what, key)
        raise NotAllowedError(msg)
