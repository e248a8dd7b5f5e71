"""Slices and confidence intervals, ops comparison, diagnosis, compare, gate."""
