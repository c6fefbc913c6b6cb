"""The coordinator: a FastAPI service that holds the studies, leases trials to workers, takes
their reports, ranks the trials and retrains each study's AeLLE model. It uses ``aelle`` and the
task registry's search spaces only; the user's commands (:mod:`service.user_cli`) reach it over
HTTP."""
