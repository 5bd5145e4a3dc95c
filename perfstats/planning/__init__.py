"""Capacity planning from a stress run: load steps, knee, Universal Scalability Law, instances.

``plan`` assembles the answer (:func:`capacity`); ``steps`` finds the load steps, ``knee`` the
knee of the curve, ``usl`` fits the Universal Scalability Law; ``traffic`` says which requests
are server throughput (HTTP ones, other protocols only when asked).
"""

from perfstats.planning.plan import CapacityPlan, capacity, instances_needed
from perfstats.planning.usl import USLFit, fit_usl

__all__ = ["CapacityPlan", "USLFit", "capacity", "fit_usl", "instances_needed"]
