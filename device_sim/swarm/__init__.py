"""Swarms of emulated devices: a plan (sans-IO), a ledger and summary (sans-IO), a trio driver.

``impp-devices swarm`` (device_sim/swarm/cli.py) runs one against a gateway; docs/device-sim.md
describes the operations, the schedule and every field of the summary.
"""

from __future__ import annotations

from device_sim.swarm.driver import Progress, Swarm, SwarmConfig
from device_sim.swarm.ledger import KindSummary, Ledger, MessageTrace, Outcome, ProfileCost, Summary
from device_sim.swarm.plan import Mix, MixError, OpKind, PlannedOp, SleepPlan, plan_operations

__all__ = [
    "KindSummary",
    "Ledger",
    "MessageTrace",
    "Mix",
    "MixError",
    "OpKind",
    "Outcome",
    "PlannedOp",
    "ProfileCost",
    "Progress",
    "SleepPlan",
    "Summary",
    "Swarm",
    "SwarmConfig",
    "plan_operations",
]
