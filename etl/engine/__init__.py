"""The routing and access engine, shared by the pipeline and by the app's live What-if.

It turns a raw street network into per-mode routable networks (:mod:`~etl.engine.network`,
with the speed table in :mod:`~etl.engine.speeds`), computes travel times from every node to
the nearest site (:mod:`~etl.engine.access`), samples streets into fine H3 cells
(:mod:`~etl.engine.streets`, :mod:`~etl.engine.grid`), draws bands and deserts from them
(:mod:`~etl.engine.isochrones`), and recomputes all of it for a changed set of sites
(:mod:`~etl.engine.scenario`, :mod:`~etl.engine.suggest`). It works on arrays only: it
imports nothing but :mod:`etl._errors` and :mod:`etl.categories` from the rest of the
project, never the readers, the bundle, the outputs or the app.
"""
