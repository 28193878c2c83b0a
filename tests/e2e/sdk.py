"""The `openalgo` SDK as a test client. CI installs it (on Python 3.11 with
--ignore-requires-python, see .ci/run); elsewhere its tests skip with the install line, and
OPENALGO_GTT_REQUIRE_SDK=1 (set by CI) turns that skip into a failure so CI never skips them."""
from __future__ import annotations

import os

import pytest

INSTALL = 'pip install --ignore-requires-python --no-deps "openalgo>=2.0.4"'


def openalgo_api():
    try:
        from openalgo import api
    except ImportError:
        if os.environ.get("OPENALGO_GTT_REQUIRE_SDK") == "1":
            pytest.fail(f"the openalgo SDK is required here; install it with: {INSTALL}")
        pytest.skip(f"the openalgo SDK is not installed; install it with: {INSTALL}")
    return api
