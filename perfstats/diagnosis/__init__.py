"""Bottlenecks: what costs the users most, ranked by user-seconds lost per hour.

``rank`` scores and ranks the items (:func:`bottlenecks`); ``metrics`` adds the custom Trends,
failing Rates and checks; ``excess`` estimates the time spent above an SLO from histograms or
percentiles; ``patterns`` finds leaks, spikes and plateaus.
"""

from perfstats.diagnosis.rank import Bottlenecks, bottlenecks

__all__ = ["Bottlenecks", "bottlenecks"]
