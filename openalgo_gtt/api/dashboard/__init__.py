"""The trader's page: see, place, modify and cancel GTTs, and read the audit trail, in a browser
(views.py), with htmx and Pico CSS vendored under static/ (no CDN, no build step)."""
from openalgo_gtt.api.dashboard.views import bp

__all__ = ["bp"]
