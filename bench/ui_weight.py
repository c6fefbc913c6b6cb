"""The page at /ui on a study of 1,000 trials: its weight and its time to first render in
headless Chromium, and what each of its API calls costs the coordinator.

The study is filled through the coordinator's own calls (lease, report, result), its fates
decided by the study's median pruner, a few trials diverging; each trial reports a
``--size``-value spectrum at every epoch. The coordinator then serves it (uvicorn, SQLite),
and a fresh Chromium (no cache) opens the study's view ``--runs`` times.

Page weight: the bytes the browser received until the view was first drawn (HTML, scripts,
styles, then the API's JSON), from the Resource Timing API; time to first render: from the
navigation's start until the first complete drawing of the table and every plot; long tasks:
the main thread's busy stretches over 50 ms (the "stall" the browser shows). Also the bytes
one idle poll fetches, and server time per API call (median of 5, from this process).

Usage: python -m bench.ui_weight [--trials 1000] [--epochs 10] [--size 32] [--runs 3]
       [--screenshots docs/img] [--out bench/results]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import optuna

from bench.machine import describe
from service.api import API_PREFIX
from service.config import ServiceSettings
from service.coordinator import Coordinator
from service.local import local_coordinator
from service.specs import StudyCreate, task_of
from service.ui import PLOTTING

USER_TOKEN, WORKER_TOKEN = "ui-bench-user-token-01", "ui-bench-worker-token-1"
NAME = "bench"

# what the page does before its first drawing, observed from outside: long tasks recorded
# from the document's start (a script added over the DevTools protocol runs before the page's)
OBSERVE = """
window.__longTasks = [];
new PerformanceObserver(l => {
  for (const e of l.getEntries()) window.__longTasks.push(e.duration);
}).observe({type: 'longtask', buffered: true});
"""


def fill(settings: ServiceSettings, trials: int, epochs: int, size: int, seed: int) -> dict:
    """A study of ``trials`` finished trials, through the coordinator's calls."""
    rng = np.random.default_rng(seed)
    coordinator = Coordinator(settings)
    spec = StudyCreate(name=NAME, task="smnist", budget=trials, epochs=epochs,
                       sampler={"name": "random", "seed": seed},
                       pruner={"name": "median", "settings": {"n_startup_trials": 5,
                                                              "n_warmup_steps": 2}},
                       settings={"hidden": size, "spectrum_state": "hidden"})
    coordinator.create_study(spec)
    task = task_of(spec)
    start = time.perf_counter()
    fates: dict[str, int] = {}
    for _ in range(trials):
        got = coordinator.lease("bench")
        n = task.spectrum_size(got.params, got.settings)
        quality = rng.uniform(0.0, 1.0)  # the trial's fate: lower ends better
        diverge_at = int(rng.integers(1, epochs + 1)) if rng.uniform() < 0.05 else None
        state, value = "complete", None
        for epoch in range(epochs + 1):
            if diverge_at == epoch:
                state = "diverged"
                break
            value = 2.3 - (1.5 - quality) * (1 - np.exp(-epoch / 3)) + rng.normal(0, 0.01)
            slope = 0.3 + quality + rng.normal(0, 0.05)
            z = 0.05 - slope * np.arange(n) / max(n - 1, 1) + rng.normal(0, 0.01, n)
            answer = coordinator.report(got.trial_id, got.token, epoch, float(value),
                                        z.tolist())
            if answer.decision == "prune":
                state = "pruned"
                break
        coordinator.finish(got.trial_id, got.token, state,
                           float(value) if state == "complete" else None,
                           "loss is nan" if state == "diverged" else None)
        fates[state] = fates.get(state, 0) + 1
        if sum(fates.values()) % 100 == 0:
            print(f"{sum(fates.values())} trials filled, {time.perf_counter() - start:.0f} s",
                  flush=True)
    seconds = time.perf_counter() - start
    coordinator.close()
    return {"fates": fates, "fill_seconds": round(seconds, 1)}


@contextlib.contextmanager
def database(admin_url: str | None, tmp: str) -> Iterator[str]:
    if admin_url is None:
        yield f"sqlite:///{tmp}/ui.db"
        return
    from bench.service_load import fresh_database

    url, drop = fresh_database(admin_url)
    try:
        yield url
    finally:
        drop()


def browser(chromium: str, driver: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1700", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def first_render(url: str, chromium: str, driver: str, shots: Path | None) -> dict:
    """One fresh browser opening the study's view."""
    from selenium.webdriver.support.ui import WebDriverWait

    d = browser(chromium, driver)
    try:
        d.execute_cdp_cmd("Network.enable", {})
        d.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        d.get(f"{url}/ui")  # the login page; the token goes where the login form puts it
        d.execute_script("sessionStorage.setItem('aelle-user-token', arguments[0])", USER_TOKEN)
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVE})
        d.get("about:blank")
        d.get(f"{url}/ui#/study/{NAME}")
        WebDriverWait(d, 300, poll_frequency=0.05).until(
            lambda d: d.execute_script("return window.aelleRendered"))
        got = d.execute_script("""
            const nav = performance.getEntriesByType('navigation')[0];
            const res = performance.getEntriesByType('resource');
            const until = window.aelleRendered;
            const early = res.filter(r => r.responseEnd <= until + 1);
            const sum = (rs, f) => rs.reduce((a, r) => a + r[f], 0);
            const api = early.filter(r => r.name.includes('/api/v1/'));
            const assets = early.filter(r => !r.name.includes('/api/v1/'));
            const rows = document.querySelectorAll('#trials-table tbody tr').length;
            return {render_ms: until, rows,
                    html_bytes: nav.transferSize, asset_bytes: sum(assets, 'transferSize'),
                    api_bytes: sum(api, 'transferSize'), requests: early.length + 1,
                    api: api.map(r => [new URL(r.name).pathname + new URL(r.name).search,
                                       r.transferSize, Math.round(r.duration)]),
                    long_tasks: window.__longTasks.slice(),
                    measures: performance.getEntriesByType('measure')
                      .filter(m => m.name.startsWith('aelle:') && m.startTime <= until)
                      .map(m => [m.name.slice(6), Math.round(m.duration)])};""")
        before = d.execute_script("return performance.getEntriesByType('resource').length")
        time.sleep(6.5)  # three idle polls of a finished study
        idle = d.execute_script("""
            const res = performance.getEntriesByType('resource').slice(arguments[0]);
            return {requests: res.length, bytes: res.reduce((a, r) => a + r.transferSize, 0)};""",
                                before)
        got["idle_poll"] = idle
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            d.save_screenshot(str(shots / "ui_study_1000.png"))
        return got
    finally:
        d.quit()


def api_costs(url: str) -> dict[str, float]:
    """Median milliseconds of each call the study's view makes, from this process."""
    headers = {"Authorization": f"Bearer {USER_TOKEN}"}
    paths = {"summary": f"/studies/{NAME}", "trials": f"/studies/{NAME}/trials?order=number",
             "running trials": f"/studies/{NAME}/trials?order=number&state=running",
             "curves": f"/studies/{NAME}/curves", "plane": f"/studies/{NAME}/plane",
             "models": f"/studies/{NAME}/models", "one trial": f"/studies/{NAME}/trials/0"}
    out = {}
    with httpx.Client(base_url=url + API_PREFIX, headers=headers, timeout=120) as c:
        for label, path in paths.items():
            times = []
            for _ in range(5):
                t = time.perf_counter()
                r = c.get(path)
                r.raise_for_status()
                times.append(time.perf_counter() - t)
            out[label] = {"ms": round(1e3 * statistics.median(times), 1),
                          "bytes": len(r.content)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--size", type=int, default=32, help="exponents per spectrum")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--database", help="a PostgreSQL URL: a fresh database is made beside "
                    "it and dropped (default: a SQLite file in a temporary folder)")
    ap.add_argument("--screenshots", type=Path, help="save the view of the study here")
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise SystemExit("needs chromium and chromedriver (apt-get install chromium "
                         "chromium-driver)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # tmpfs where there is one: the fill's thousands of commits then wait for no disk
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp, database(args.database, tmp) as db_url:
        settings = ServiceSettings(database_url=db_url, user_token=USER_TOKEN,
                                   worker_token=WORKER_TOKEN)
        filled = fill(settings, args.trials, args.epochs, args.size, args.seed)
        print(f"filled {args.trials} trials in {filled['fill_seconds']} s: {filled['fates']}",
              flush=True)
        with local_coordinator(settings) as url:
            api_costs(url)  # warm: the study loaded, the first queries paid
            runs = [first_render(url, chromium, driver,
                                 args.screenshots if i == args.runs - 1 else None)
                    for i in range(args.runs)]
            costs = api_costs(url)
    for r in runs:
        print(f"first render {r['render_ms']:.0f} ms, {r['rows']} rows, "
              f"{(r['html_bytes'] + r['asset_bytes']) / 1e3:.1f} kB page + "
              f"{r['api_bytes'] / 1e3:.1f} kB data, {len(r['long_tasks'])} long tasks "
              f"(longest {max(r['long_tasks'], default=0):.0f} ms)", flush=True)
    page = statistics.median(r["html_bytes"] + r["asset_bytes"] for r in runs)
    data = statistics.median(r["api_bytes"] for r in runs)
    render = statistics.median(r["render_ms"] for r in runs)
    longest = statistics.median(max(r["long_tasks"], default=0) for r in runs)
    idle = runs[-1]["idle_poll"]
    result = {"trials": args.trials, "epochs": args.epochs, "spectrum_size": args.size,
              "runs": runs, "fill": filled, "api": costs, "machine": describe(),
              "plotting": f"{PLOTTING[0]} {PLOTTING[1]}",
              "median": {"page_bytes": page, "data_bytes": data, "render_ms": render,
                         "longest_task_ms": longest}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ui_weight.json").write_text(json.dumps(result, indent=1))
    fates = ", ".join(f"{v} {k}" for k, v in filled["fates"].items())
    lines = [
        "# The page at /ui on a 1,000-trial study", "",
        f"{args.trials} finished trials ({fates}), {args.epochs + 1} reports each at most, "
        f"{args.size}-value spectra; "
        f"{'PostgreSQL' if args.database else 'SQLite'}; "
        f"headless Chromium, no cache, {args.runs} runs (median); {describe()}.", "",
        "| what | median |", "|---|---|",
        f"| page (HTML, scripts incl. {PLOTTING[0]} {PLOTTING[1]}, styles) | "
        f"{page / 1e3:.1f} kB |",
        f"| data until the first render (API JSON, uncompressed) | {data / 1e3:.1f} kB |",
        f"| time to first render (table of {runs[-1]['rows']} rows and every plot) | "
        f"{render:.0f} ms |",
        f"| longest main-thread task | {longest:.0f} ms |",
        f"| one idle poll (a finished study: its summary only) | "
        f"{idle['bytes'] / max(idle['requests'], 1):.0f} B per request, {idle['requests']} "
        f"requests in 6.5 s |", "",
        "Server time of each call the view makes (median of 5, from the benchmark's process):",
        "", "| call | ms | bytes |", "|---|---|---|"]
    lines += [f"| {k} | {v['ms']} | {v['bytes']} |" for k, v in costs.items()]
    steps: dict[str, list[float]] = {}
    for r in runs:
        for label, ms in dict(r["measures"]).items():  # the first drawing of each
            steps.setdefault(label, []).append(ms)
    lines += ["", "The first drawing, step by step in the browser (median ms): " + ", ".join(
        f"{label} {statistics.median(ms):.0f}" for label, ms in steps.items()) + "."]
    lines += ["", "Command: `python -m bench.ui_weight` (chromium and chromedriver installed)."]
    (args.out / "ui_weight.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
