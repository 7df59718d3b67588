"""What a built bundle is turned into for people: exports, printed maps, tiles and reports.

:mod:`~etl.outputs.export` writes GeoPackage, Shapefile, GeoJSON and CSV exports with their
metadata and data dictionary; :mod:`~etl.outputs.render` prints maps and fact sheets;
:mod:`~etl.outputs.tiles` pre-renders the offline basemap; :mod:`~etl.outputs.quality_report`
writes the providers' data quality report. Outputs read a bundle (:mod:`etl.bundle`) and may
use the engine and the readers' constants; the pipeline, the CLI and the app call them, never
the reverse.
"""
