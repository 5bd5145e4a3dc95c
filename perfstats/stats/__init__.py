"""Statistics on plain arrays: histograms, bootstrap, window-level tests, error-rate tests, the
testing design.

Nothing here touches DuckDB, files or the terminal; every function takes numpy arrays or small
dataclasses and returns numbers, so the same code serves ``perfstats compare`` and its simulations.
"""
