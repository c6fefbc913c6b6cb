"""The worker runtime (lease, train, report, result, heartbeats), built by the issue
"coordinator service, worker runtime, CLI and containers". It imports ``tasks`` and ``aelle``,
never the database."""
