"""Reusable widgets: the degraded-mode banner, the search results table."""
