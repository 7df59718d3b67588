"""Access Atlas: the Dash app. ``gunicorn app:server`` serves it.

The region bundle comes from ``$ACCESS_ATLAS_GEODATA`` (default ``geodata/``) and the
region shown first from ``$ACCESS_ATLAS_REGION`` (default: the built-in ``demo``).
"""

from __future__ import annotations

import os
from pathlib import Path

from dash import Dash, Input, Output, callback, dcc, html

from etl._errors import BundleError
from etl.regions import list_regions, open_region
from layouts.overview import REGION_SELECT_ID, error_page, overview_page

ROOT = Path(__file__).resolve().parent
GEODATA = Path(os.environ.get("ACCESS_ATLAS_GEODATA", ROOT / "geodata"))
DEFAULT_REGION = os.environ.get("ACCESS_ATLAS_REGION", "demo")

app = Dash(__name__, title="Access Atlas", assets_folder=str(ROOT / "assets"),
           suppress_callback_exceptions=True)  # fmt: skip
server = app.server


def render(region: str) -> html.Div:
    """Render the page of ``region``, or a page that says what is wrong."""
    try:
        bundle = open_region(GEODATA, region)
    except BundleError as exc:
        return error_page(str(exc))
    return overview_page(bundle.manifest, list_regions(GEODATA) or [region])


def serve_layout() -> html.Div:
    """Build the layout per page load, so a rebuilt bundle shows without a restart."""
    return html.Div([dcc.Location(id="url"), html.Main(render(DEFAULT_REGION), id="page")])


app.layout = serve_layout


@callback(Output("page", "children"), Input(REGION_SELECT_ID, "value"), prevent_initial_call=True)
def switch_region(region: str) -> html.Div:
    """Show another region's bundle."""
    return render(region)


if __name__ == "__main__":  # pragma: no cover
    app.run(debug=False, host="127.0.0.1", port=int(os.environ.get("PORT", "8050")))
