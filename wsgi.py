"""WSGI entry point: `gunicorn wsgi:app`."""

import gc
import os

from hall import create_app

app = create_app()

# Garbage-collector tuning for the app server (docs/performance.md). A request allocates thousands of
# container objects (the engine rebuilds an instance's task tree), so with Python's default gen-0
# threshold of 700 nearly every request pays one or more young-generation collections (~0.4 ms each on
# the benchmark VM). Everything loaded at start-up (the app, SQLAlchemy's mappers, compiled diagrams)
# lives as long as the process: freeze it out of the collector's sight, then collect young objects every
# 10,000 allocations. HALL_GC_THRESHOLD="700,10,10" restores Python's defaults; "off" leaves them alone.
_threshold = os.environ.get("HALL_GC_THRESHOLD", "10000,20,20")
if _threshold != "off":
    gc.collect()
    gc.freeze()
    gc.set_threshold(*(int(part) for part in _threshold.split(",")))
