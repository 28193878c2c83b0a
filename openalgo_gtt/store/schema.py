"""The whole schema: importing this registers every table on one MetaData (Alembic's env.py and
the test fixtures use it). The rest of the store imports only the tables it uses."""
from openalgo_gtt.store import login_models, models, page_session_models, sandbox_models  # noqa: F401
from openalgo_gtt.store.tables import metadata

__all__ = ["metadata"]
