"""Production monitoring: logged traffic read in windows, a sample labelled by the teacher or by people,
every number per slice with its interval, drift against a baseline, and alerts in the gate's rule syntax.

`genval monitor CONFIG` reads only traffic it has not seen (files and rows, by content hash), appends
one block of rows per new window to the `windows` table of `runs/<name>/`, and writes `monitor.json`,
`monitor.html` and `monitor.md`. See docs/monitor.md.
"""
