"""The database each fault and fuzz suite runs against: SQLite, and PostgreSQL where one
answers (skipped, saying why, otherwise)."""

import pytest

from tests.service.test_postgres import pg_url  # noqa: F401  (the fixture)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/faults.db"
    return request.getfixturevalue("pg_url")
