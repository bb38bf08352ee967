"""A run's life in the server: the lessons' catalogue, a run's processes started and ended,
its main process, the run manager (caps, create, cancel, timeout), its record, what the
server says when it refuses, and `procscope run` in a terminal.
"""
