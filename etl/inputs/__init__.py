"""Readers and stages for each kind of raw input a region brings.

One module per kind: street networks (:mod:`~etl.inputs.osm`), areas and their people
(:mod:`~etl.inputs.areas`), provider lists (:mod:`~etl.inputs.providers`) and their offline
geocoding (:mod:`~etl.inputs.geocode`, :mod:`~etl.inputs.addresses`), siting rules
(:mod:`~etl.inputs.barriers`, :mod:`~etl.inputs.siting`), overdose tables
(:mod:`~etl.inputs.overdose`, :mod:`~etl.inputs.counties`) and GTFS feeds
(:mod:`~etl.inputs.gtfs`, :mod:`~etl.inputs.transit`); :mod:`~etl.inputs.tables` reads any
CSV or GIS table the same way for all of them. Readers take their settings from the config
schema (:mod:`etl.config`) and may use the engine and the bundle's privacy rules; they never
import the outputs, the pipeline or the app.
"""
