"""Property-based specs and reports, against SQLite and PostgreSQL: whatever spec a user
sends is either refused with 422 naming a field, or stored, leased and reported on without a
server error, and never quarantined later (every check a trial could fail was made at
creation). PostgreSQL is skipped, saying why, where none answers."""

import itertools
import json
import math

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tasks
from aelle.pruners import NAMES
from service.api.app import create_app
from tests.service.support import API, SETTINGS, USER, WORKER, service_settings

NUMBERS = st.one_of(
    st.integers(-10, 10), st.integers(-10**13, 10**13),
    st.floats(-1e3, 1e3, allow_nan=False), st.sampled_from([1e-300, 1e308, -1e308, 0.5, 2.0]),
    # JSON's non-finite literals, and a number that overflows to one
    st.sampled_from([math.nan, math.inf, -math.inf]))
VALUES = st.one_of(NUMBERS, st.booleans(), st.none(),
                   st.sampled_from(["gru", "lstm", "hidden", "full", "auto", "x", ""]))
PARAMS = ["arch", "p_gru", "p_lstm", "hidden", "lr", "batch_size", "spectrum_k",
          "spectrum_steps", "spectrum_state", "spectrum_t_on", "epochs", "grad_clip",
          "colour"]


@st.composite
def distributions(draw):
    kind = draw(st.sampled_from(["float", "int", "categorical"]))
    if kind == "categorical":
        return {"type": kind, "choices": draw(st.lists(VALUES, min_size=0, max_size=4))}
    low = draw(NUMBERS)
    high = draw(st.one_of(NUMBERS, st.just(low + 1 if isinstance(low, int) else 2 * low)))
    out = {"type": kind, "low": low, "high": high, "log": draw(st.booleans())}
    if draw(st.booleans()):
        out["step"] = draw(NUMBERS)
    return out


@st.composite
def specs(draw):
    spec = {"task": "smnist", "budget": draw(st.integers(1, 3)),
            "epochs": draw(st.one_of(st.none(), st.integers(1, 2))),
            "settings": {**SETTINGS, **draw(st.dictionaries(
                st.sampled_from(PARAMS[3:]), VALUES, max_size=2))},
            "sampler": {"name": draw(st.sampled_from(["random", "tpe"])), "seed": 0}}
    if spec["epochs"] is None:
        spec["settings"]["epochs"] = draw(st.one_of(st.integers(1, 2), st.integers(1, 2),
                                                    VALUES))
    if draw(st.booleans()):
        spec["search_space"] = draw(st.dictionaries(st.sampled_from(PARAMS), distributions(),
                                                    max_size=3))
    pruner = {"name": draw(st.sampled_from(NAMES))}
    if draw(st.booleans()):
        pruner["settings"] = draw(st.dictionaries(
            st.sampled_from(["n_startup_trials", "quantile", "n_warmup_steps", "percentile",
                             "explore", "config", "patience", "min_resource"]),
            st.one_of(VALUES, st.fixed_dictionaries({"dim": NUMBERS})), max_size=2))
    spec["pruner"] = pruner
    return spec



def test_a_spec_is_refused_or_served_never_a_server_error(url):
    names = (f"s{i}" for i in itertools.count())
    with TestClient(create_app(service_settings(url))) as client:

        @given(spec=specs(), value=st.floats(-1e6, 1e6, allow_nan=False))
        @settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(spec, value):
            spec = {"name": next(names), **spec}
            # json.dumps writes NaN and Infinity: what a careless client sends
            r = client.post(f"{API}/studies", content=json.dumps(spec),
                            headers={**USER, "content-type": "application/json"})
            assert r.status_code in (201, 422), r.text
            if r.status_code == 422:
                assert r.json()["detail"], r.text
                return
            got = client.post(f"{API}/leases", json={}, headers=WORKER)
            assert got.status_code == 200, got.text
            got = got.json()
            assert got["study"] == spec["name"], got
            size = tasks.get("smnist").spectrum_size(got["params"], got["settings"])
            answer = client.post(f"{API}/trials/{got['trial_id']}/reports", json={
                "lease": got["token"], "epoch": 0, "value": value, "spectrum": [0.1] * size},
                headers=WORKER)
            assert answer.status_code == 200, answer.text
            summary = client.get(f"{API}/studies/{spec['name']}", headers=USER).json()
            assert summary["quarantine"] is None, summary
            # the study stops here, so that the next example's lease is the next study's
            assert client.post(f"{API}/studies/{spec['name']}/stop",
                               headers=USER).status_code == 200

        check()
        listed = client.get(f"{API}/studies", headers=USER)
        assert listed.status_code == 200  # every stored study still lists
