"""`procscope trace`: any Python program run as python would run it, watched like a lesson (the
sitecustomize that arms it, the socket to the server).
"""
