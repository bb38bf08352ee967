"""The way an event travels from emit() to the server: the frame on the pipe, the reporter
in every process of a run, the relay thread that reads and stamps, the ledger of a run's
lifecycle, and what is redacted from a command line.
"""
