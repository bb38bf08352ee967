"""CPython's own multiprocessing tests (test/_test_multiprocessing.py) as a user's program.

    python mp_suite.py START_METHOD CLASS [CLASS ...]

Runs in the program's main process (and, re-imported as __mp_main__, in its spawned
children: the generated test classes must exist there too, so they are made at import).
The interpreter ships the tests but, here, not the test_multiprocessing_<method> modules
that generate the classes: this file does what they do. The last line on stdout is a
JSON summary: every test id by outcome, so that two runs can be compared test by test.
"""

import json
import sys
import time
import unittest

from test import _test_multiprocessing

_test_multiprocessing.install_tests_in_module_dict(globals(), sys.argv[1])


class Outcomes(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = []

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test.id())


if __name__ == "__main__":
    started = time.monotonic()
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=1, resultclass=Outcomes)
    program = unittest.main(module="__main__", argv=["mp_suite", *sys.argv[2:]],
                            testRunner=runner, exit=False)
    result = program.result
    print(json.dumps({
        "passed": sorted(result.passed),
        "failed": sorted(t.id() for t, _ in result.failures) +
        sorted(t.id() for t in result.unexpectedSuccesses),
        "errors": sorted(t.id() for t, _ in result.errors),
        "skipped": sorted(t.id() for t, _ in result.skipped),
        "expected_failures": sorted(t.id() for t, _ in result.expectedFailures),
        "seconds": round(time.monotonic() - started, 3),
    }), flush=True)
