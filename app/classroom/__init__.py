"""The classroom: students following the teacher's runs, the one question asked before a run, and
the What-if signals.
"""
