"""The app's view of a region bundle: pure functions the callbacks and layouts call.

What the map shows, computed from a built bundle and the page's state, without Dash:
:mod:`~viewmodel.data` opens a region (its layers, summaries, minute bands and map options),
:mod:`~viewmodel.state` parses and writes the shareable URL state, :mod:`~viewmodel.lookup`
answers address and site look-ups, :mod:`~viewmodel.scenario` and
:mod:`~viewmodel.scenario_map` run What-if changes and what they redraw,
:mod:`~viewmodel.saved_views` keeps town-hall views, and :mod:`~viewmodel.serving` adds the
health check, security headers and logs to the server. It reads bundles (:mod:`etl.bundle`)
and uses the engine (:mod:`etl.engine`) and the offline geocoder, never the pipeline or the
CLI; :mod:`layouts` and :mod:`callbacks` import it, never the reverse.
"""
