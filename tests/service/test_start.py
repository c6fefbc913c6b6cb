"""What a coordinator refuses at start: missing, short or shared tokens, and a second
coordinator on one SQLite file."""

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.api.app import create_app
from service.coordinator import Coordinator
from service.db import AlreadyServed
from tests.service.support import service_settings


@pytest.mark.parametrize("tokens, message", [
    ({"user_token": None}, "set AELLE_USER_TOKEN"),
    ({"user_token": "short"}, "AELLE_USER_TOKEN must have at least 16 characters"),
    ({"worker_token": "x" * 15}, "AELLE_WORKER_TOKEN must have at least 16"),
    ({"user_token": "the-same-token-for-both", "worker_token": "the-same-token-for-both"},
     "must differ"),
])
def test_weak_tokens_are_refused(tmp_path, tokens, message):
    tokens = {k: None if v is None else SecretStr(v) for k, v in tokens.items()}
    settings = service_settings(f"sqlite:///{tmp_path}/a.db").model_copy(update=tokens)
    with pytest.raises(ValueError, match=message):
        create_app(settings)


def test_aelle_serve_refuses_short_tokens_in_one_line(tmp_path, monkeypatch, capsys):
    from aelle.cli import main

    monkeypatch.setenv("AELLE_USER_TOKEN", "u")
    monkeypatch.setenv("AELLE_WORKER_TOKEN", "w" * 20)
    assert main(["serve", "--database-url", f"sqlite:///{tmp_path}/a.db"]) == 2
    err = capsys.readouterr().err.strip()
    assert "AELLE_USER_TOKEN must have at least 16" in err and len(err.splitlines()) == 1


def test_one_sqlite_file_takes_one_coordinator(tmp_path):
    settings = service_settings(f"sqlite:///{tmp_path}/one.db")
    first = Coordinator(settings)
    first.start()
    try:
        with pytest.raises(AlreadyServed, match="another coordinator serves this SQLite"):
            Coordinator(settings).start()
        with pytest.raises(AlreadyServed), TestClient(create_app(settings)):
            pass
    finally:
        first.close()
    second = Coordinator(settings)  # the first closed: the file is free
    second.start()
    second.close()


def test_aelle_serve_refuses_a_served_sqlite_file_in_one_line(tmp_path, monkeypatch, capsys):
    from aelle.cli import main

    settings = service_settings(f"sqlite:///{tmp_path}/one.db")
    monkeypatch.setenv("AELLE_USER_TOKEN", settings.user_token.get_secret_value())
    monkeypatch.setenv("AELLE_WORKER_TOKEN", settings.worker_token.get_secret_value())
    first = Coordinator(settings)
    first.start()
    try:
        assert main(["serve", "--database-url", settings.database_url]) == 2
    finally:
        first.close()
    err = capsys.readouterr().err.strip()
    assert "another coordinator serves this SQLite file" in err
