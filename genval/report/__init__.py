"""Rendering: report.md, report.html."""
