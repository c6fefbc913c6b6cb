"""The coordinator's HTTP interface (FastAPI): see :func:`service.api.app.create_app`.

``API_PREFIX`` lives here, apart from the app, so that clients (the user's commands, the demo,
the benchmarks) name the routes without importing the coordinator."""

API_PREFIX = "/api/v1"
