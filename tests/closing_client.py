"""Flask's test client, closing each response as soon as the app returns it, as a WSGI server
closes one once it is sent: the work a place leaves for after its answer (recording the GTT, see
api/lifecycle.py) has run by the time a test or an in-process benchmark looks. A test that
wants the window between answer and record passes `buffered=False`."""
from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient


class ClosingTestClient(FlaskClient):
    def open(self, *args, buffered: bool = True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)


def install() -> None:
    """Every Flask app's test_client() is a ClosingTestClient from now on."""
    Flask.test_client_class = ClosingTestClient
