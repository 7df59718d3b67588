"""The built-in fictional region, Millbrook County, generated from code.

:mod:`~etl.demo.generate` writes every raw input of the region (an OSM street network,
SAMHSA-style provider lists, census-style areas, a CDC-WONDER-style overdose table, siting
points) and :mod:`~etl.demo.transit` its small bus network and timetable, so the project
builds and serves a region with nothing downloaded. It writes raw files only: it imports
nothing from the project but :mod:`etl._errors`, and the pipeline reads what it wrote like
any user's input.
"""
