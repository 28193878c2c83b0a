"""A trailing slash on an OpenAlgo route (`/api/v1/placegttorder/`) is the route itself, as
OpenAlgo serves it: callers copy URLs with and without one.

Done on the path before routing, not by werkzeug's redirect (app.py says why there is none), and
only for `/api/v1/`: one slash is taken off, so `/api/v1/ping//` stays a 404.
"""
from __future__ import annotations

PREFIX = "/api/v1/"


class TrailingSlash:
    """WSGI middleware: `/api/v1/<name>/` is served as `/api/v1/<name>`."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX) and path.endswith("/") and len(path) > len(PREFIX) and not path.endswith("//"):
            environ["PATH_INFO"] = path[:-1]
        return self.app(environ, start_response)
