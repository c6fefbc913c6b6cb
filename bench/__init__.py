"""The benchmarks: each module is run as ``python -m bench.<name>`` from the repository root and
writes its figures under ``bench/results``. ``accounting`` scores pruned studies against their
reference, ``machine`` says what a result was measured on, ``rules`` names the pruners compared."""
