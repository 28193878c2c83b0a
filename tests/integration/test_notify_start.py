"""The notification sender loads Apprise when it starts, not in its first delivery (issue 26,
item 7): on a busy machine the first import took seconds, so the day's first notification came
late, and the time counted against the delivery's own limit, where a delivery that ran over it
was counted as failed although it went out, and was sent again. Checked in a fresh interpreter,
where nothing else has imported Apprise."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.e2e.server import REPO

SCRIPT = textwrap.dedent("""
    import sys
    from openalgo_gtt.config import load_settings
    from openalgo_gtt.gateway import Gateway
    from openalgo_gtt.store.migrate import upgrade

    settings = load_settings({"DATABASE_URL": sys.argv[1], "API_KEY_PEPPER": "p" * 40,
                              "NOTIFY_URLS": "json://127.0.0.1:9/nowhere"}, read_dotenv=False)
    upgrade(settings.database_url)
    gateway = Gateway.build(settings)
    before = "apprise" in sys.modules
    gateway.sender.start()
    print(before, "apprise" in sys.modules, gateway.notifications.outbox.stats().pending)
    gateway.close()
""")


def test_the_sender_has_apprise_loaded_before_the_first_delivery(tmp_path):
    ran = subprocess.run([sys.executable, "-c", SCRIPT, f"sqlite:///{tmp_path / 'gtt.db'}"], cwd=tmp_path,
                         env={"PYTHONPATH": str(REPO), "OPENALGO_GTT_HOME": str(tmp_path / "home"),
                              "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["False", "True", "0"]  # loaded by start(), with nothing to deliver yet
