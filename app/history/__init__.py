"""Runs that outlive the server: the SQLite history and its writer thread, and the exports and
imports of a run.
"""
