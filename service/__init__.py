"""The FastAPI coordinator (studies, leases, reports, rankings, AeLLE retraining), built by the
issue "coordinator service, worker runtime, CLI and containers". It uses ``aelle`` and the task
registry's search spaces only."""
