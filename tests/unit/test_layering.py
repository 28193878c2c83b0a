"""The layering the code keeps: config imports no service, services hold no SQL for API keys,
and the API reads the presented key in one place."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "openalgo_gtt"


def test_config_imports_no_service():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, openalgo_gtt.config; "
                               "print(sorted(m for m in sys.modules if m.startswith('openalgo_gtt.')))"],
        capture_output=True, text=True, check=True, cwd=PACKAGE.parent,
    ).stdout
    assert "openalgo_gtt.services" not in loaded and "openalgo_gtt.api" not in loaded


def test_the_api_key_service_holds_no_sql():
    source = (PACKAGE / "services" / "apikeys.py").read_text()
    assert not re.search(r"\b(select|update|insert|delete)\(", source)
    assert "from sqlalchemy import" not in source and "store.models" not in source


def test_the_presented_key_is_read_in_one_place():
    readers = [path.name for path in (PACKAGE / "api").glob("*.py")
               if 'headers.get("X-API-KEY")' in path.read_text() or '.get("apikey")' in path.read_text()]
    assert readers == ["auth.py"]
