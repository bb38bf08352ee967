"""The web server: the app and its lifespan, the REST routes, the pages, the guard of tokens
and hosts, the error pages, the links it prints.
"""
