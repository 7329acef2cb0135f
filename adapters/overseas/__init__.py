"""Overseas adapter: UMF-like XML and Interpol-style JSON alerts, both ways."""
