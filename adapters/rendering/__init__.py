"""Delivered view → native document: consume a partner's deliveries, verify, render into files."""
