"""Replicas sharing runs through Redis: the Redis link and log, the registry, leases and fencing,
the cluster's classroom, and the supervisor of N replicas.
"""
