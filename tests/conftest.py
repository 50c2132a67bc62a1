"""Test-suite configuration.

Hypothesis: locally, property tests draw fresh examples each run (that is how they find new
counterexamples). In CI (``CI`` set, as the CI runner does) they are derandomized: the same
examples every run, so a red CI is always reproducible and never a roll of the dice. No
per-example deadline anywhere: these machines are shared, and a slow example is not a bug.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
