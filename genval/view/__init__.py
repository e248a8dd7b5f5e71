"""The local app over a run folder (`genval view`): browse every example, and rate outputs blind.

`index` streams the run's Parquet tables once into a small SQLite file beside them, so the
server pages, filters and sorts without holding a table in memory; `browse` turns a filter
(genval.viewfilter) into a query over it; `rating` draws the sample people rate and writes
each rating into the run's labels folder; `app` is the Starlette app that serves both and the
page (static files shipped in this package, no build step, nothing fetched from elsewhere).
"""
