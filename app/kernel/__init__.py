"""The kernel's view of a run: context switches, /proc states, process groups, and the stretches
on cores drawn from them.
"""
