"""A run's log and the clients that read it: the log interface, one stream per client, the fan-out
of caught-up viewers, and where the bytes go.
"""
