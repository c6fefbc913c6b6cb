"""The coordinator's HTTP interface (FastAPI): see :func:`service.api.app.create_app`."""
