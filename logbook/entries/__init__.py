"""The domain core: entries and everything that makes them evidence.

- ``file``: entry files (YAML/TOML) parsed and validated into plain specs;
- ``registry``: drafts, registration (the locked content and its hash), amendments, an entry's detail;
- ``verdicts``: an entry's runs judged by its registered rule (the arithmetic is in ``logbook.stats``);
- ``audit``: fresh-seed audits and exact reruns;
- ``provenance``: git state and environment captured at registration and per run;
- ``seeding``: per-run seed streams and the determinism switches.

It imports ``logbook.db`` and ``logbook.stats``; ``cli``, ``tui``, ``engine`` and ``export`` import it.
"""
