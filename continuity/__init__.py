"""Continuity: a degraded-mode appliance for medical practices."""

__version__ = "0.1.0"
