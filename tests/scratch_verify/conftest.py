from tests.e2e.conftest import server_factory  # noqa: F401
