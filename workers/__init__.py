"""Wiring: settings, logging, pools and Temporal workers are built here and nowhere else."""
