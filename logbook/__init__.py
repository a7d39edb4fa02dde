"""Negative-results logbook: pre-register a hypothesis, run it on many seeds, get an honest verdict.

Distribution name ``negative-results-logbook``. The import name ``logbook`` is shared with the
unrelated logging library "Logbook"; the two cannot be installed in the same environment.
"""

__version__ = "0.1.0"
