"""The store. Importing it registers every table on `models.Base.metadata` (migrations and the
test fixtures see the whole schema)."""
from openalgo_gtt.store import login_models, models, page_session_models, sandbox_models  # noqa: F401
