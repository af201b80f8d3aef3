"""A TEST DOUBLE of the part of CVAT's REST API the exchange oracle uses (audio tasks).

CI cannot run CVAT, so this serves the same endpoints over real HTTP for cvat-sdk to talk
to, enforcing what CVAT enforces for audio (one job per task, 1 frame = 1 ms, interval
bounds, assignee rights, job states) and signing webhooks like CVAT. It is a development
and test tool only; production points the oracle at a real CVAT.
"""

from sandbox.cvat_double.app import create_app

__all__ = ["create_app"]
