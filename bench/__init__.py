"""Benchmarks: they print tables, they never fail CI (`python -m bench`).

The benchmarks use the load generator `flood`, which the catalogue only lists with
PROCSCOPE_SELFTEST=1; it is set here, for the bench process and the servers it starts.
"""

import os

os.environ.setdefault("PROCSCOPE_SELFTEST", "1")
