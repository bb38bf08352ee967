"""Runs in the main process of a program under `procscope trace`, at interpreter start-up.

`procscope trace` puts this directory first on PYTHONPATH for the program's interpreter
only, so that the program runs exactly as `python script.py` (or `-m`, `-c`) would run it,
with the reporter armed before its first line; app.trace.tracer then takes this directory and
the environment variables away again, and runs the sitecustomize this one hides.
"""

import procscope.trace.tracer

procscope.trace.tracer.arm_from_environment()
