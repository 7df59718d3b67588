"""The region bundle: the contract between the pipeline and the app.

:mod:`~etl.bundle.store` writes a bundle atomically (a temporary build folder, a link swapped
when every stage succeeded), reads it back and holds its manifest; :mod:`~etl.bundle.privacy`
applies the small-count rules and refuses to publish a bundle that breaks them;
:mod:`~etl.bundle.regions` lists the built regions of a geodata folder. It may import
:mod:`etl._errors`, :mod:`etl.categories`, :mod:`etl.config` and :mod:`etl.engine` (the
network arrays it stores), never the readers, the outputs or the app.
"""
