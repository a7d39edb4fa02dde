"""Package discovery: every package under logbook/ and trainers/ is found, not listed by hand.

migrations/ sits at the top of the repository (fixed by the project card) and is mapped into the
wheel as logbook.migrations by pyproject.toml's package-dir, which discovery cannot see on its own.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["logbook", "logbook.*", "trainers", "trainers.*"])
      + ["logbook.migrations", "logbook.migrations.versions"])
