"""The exchange oracle: escrows into CVAT audio tasks, listed to workers through HUMAN App."""
