"""The page at /ui in headless Chromium, against a real coordinator and a real worker training
a tiny study: log in, watch a trial appear and change state, open it and see its spectrum
drawn; a wrong token refused. With AELLE_UI_SCREENSHOTS=<folder>, each view is saved there
(docs/img/ holds the committed ones)."""

import importlib.util
import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from aelle.cli import main as aelle
from tests.service.support import USER, serving, study
from workers.client import API_PREFIX as API
from workers.client import CoordinatorClient
from workers.runtime import Worker

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
MISSING = ("selenium is not installed (pip install -e '.[dev]')"
           if importlib.util.find_spec("selenium") is None else
           "headless Chromium and chromedriver are needed (Debian: apt-get install chromium "
           "chromium-driver; .ci/run installs them)" if CHROMIUM is None or DRIVER is None
           else None)
if MISSING and os.environ.get("AELLE_REQUIRE_BROWSER") == "1":  # CI: a skip would hide them
    raise RuntimeError(f"AELLE_REQUIRE_BROWSER=1 but {MISSING}")
pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
if MISSING is None:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
TOKEN = USER["Authorization"].removeprefix("Bearer ")
SHOTS = os.environ.get("AELLE_UI_SCREENSHOTS")
REPORT_DELAY = 1.0  # seconds each report waits: the page polls every 2 s, the trial outlives it


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1700", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def errors(driver):
    """The page's own script errors (a refused request logs one: those are expected)."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "401" not in e["message"]]


def wait(driver, what, seconds=60):
    return WebDriverWait(driver, seconds, poll_frequency=0.1).until(lambda d: what(d))


def shot(driver, name):
    """Save the view, the window cut to the page's height."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    size = driver.get_window_size()
    height = driver.execute_script("return document.body.scrollHeight") + 24
    driver.set_window_size(size["width"], min(max(height, 400), size["height"]))
    driver.save_screenshot(str(Path(SHOTS) / f"ui_{name}.png"))
    driver.set_window_size(size["width"], size["height"])


def log_in(driver, url, token):
    driver.get(f"{url}/ui")
    field = wait(driver, lambda d: d.find_element(By.ID, "token"))
    field.clear()
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()


def drawn_pixels(driver, plot_id):
    """How many pixels of the plot's canvas hold ink: an empty or blank canvas has none."""
    return driver.execute_script("""
        const c = document.querySelector(`#${arguments[0]} canvas`);
        if (!c || !c.width) return 0;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;""", plot_id)


def slow_worker(url):
    """A real burst worker whose reports each wait a little before they are sent."""
    client = CoordinatorClient(url, "worker-secret-for-tests")
    original = client.report

    def report(*args, **kw):
        time.sleep(REPORT_DELAY)
        return original(*args, **kw)

    client.report = report
    return client, Worker(client, name="browser-test", burst=True, progress=False)


def test_a_wrong_token_is_refused(browser, settings):
    with serving(settings) as url:
        log_in(browser, url, "not-the-token")
        message = wait(browser, lambda d: d.find_element(By.ID, "login-error").text or None)
        assert "refused" in message
        assert browser.find_element(By.ID, "studies").get_attribute("hidden") is not None
        assert browser.execute_script("return sessionStorage.length") == 0
        shot(browser, "login_refused")
        # the worker token is no user token either
        log_in(browser, url, "worker-secret-for-tests")
        wait(browser, lambda d: "refused" in d.find_element(By.ID, "login-error").text)
        assert errors(browser) == []


def test_watch_a_real_study_live_then_open_a_trial(browser, settings, tmp_path):
    with serving(settings) as url:
        r = httpx.post(f"{url}{API}/studies", headers=USER,
                       json=study(name="live", budget=2, epochs=2, pruner={"name": "none"}))
        assert r.status_code == 201, r.text
        log_in(browser, url, TOKEN)
        link = wait(browser, lambda d: d.find_element(By.LINK_TEXT, "live"))
        row = link.find_element(By.XPATH, "./ancestor::tr")
        assert "0/2" in row.text and "no trials yet" in row.text
        link.click()
        wait(browser, lambda d: d.find_element(By.ID, "study-title").text == "live")
        assert browser.find_elements(By.CSS_SELECTOR, "#trials-table tbody tr") == []

        client, worker = slow_worker(url)
        runner = threading.Thread(target=worker.run, name="worker", daemon=True)
        runner.start()
        states = []

        def seen(d):
            cells = d.find_elements(By.CSS_SELECTOR, "#trials-table tr[data-number='0'] .c-state")
            if cells:
                state = cells[0].text
                if not states or states[-1] != state:
                    states.append(state)
            return states and states[-1] == "complete"

        wait(browser, seen, 180)
        assert states[0] == "running" and states[-1] == "complete", states
        wait(browser, lambda d: drawn_pixels(d, "plot-curves") > 0)
        runner.join(timeout=180)
        client.close()
        assert not runner.is_alive()
        wait(browser, lambda d: len(d.find_elements(
            By.CSS_SELECTOR, "#trials-table td.s-complete")) == 2)
        wait(browser, lambda d: int(d.find_element(By.ID, "plot-plane")
                                     .get_attribute("data-points") or 0) == 2, 30)
        for plot in ("plot-best", "plot-curves", "plot-plane", "plot-spectrum"):
            assert drawn_pixels(browser, plot) > 0, plot
        shot(browser, "study")

        browser.find_element(By.LINK_TEXT, "0").click()
        wait(browser, lambda d: d.find_element(By.ID, "trial-title").text == "live: trial 0")
        wait(browser, lambda d: int(d.find_element(By.ID, "plot-trial-spectrum")
                                     .get_attribute("data-points") or 0) > 0)
        detail = httpx.get(f"{url}{API}/studies/live/trials/0", headers=USER).json()
        # a pruner that reads no untrained spectrum spares the study its probe
        assert detail["reports"][0]["spectrum"] is None
        spectra = [r["spectrum"] for r in detail["reports"][1:]]
        points = int(browser.find_element(By.ID, "plot-trial-spectrum")
                     .get_attribute("data-points"))
        assert points == sum(map(len, spectra)) > 0  # every epoch's spectrum, drawn
        assert drawn_pixels(browser, "plot-trial-spectrum") > 0
        rows = browser.find_elements(By.CSS_SELECTOR, "#ftle-table tbody tr")
        assert len(rows) == len(detail["reports"]) == 3  # epochs 0, 1, 2
        assert "continue" in rows[0].text
        shot(browser, "trial")

        # a stored explain report opens in the trial view, in a frame that runs no script
        assert aelle(["explain", "live", "--trial", "0", "--upload", "--url", url, "--token",
                      TOKEN, "--out", str(tmp_path),
                      "--quiet"]) == 0
        button = wait(browser, lambda d: d.find_element(By.XPATH, "//button[text()="
                                                            "'Show the explain report']"), 30)
        button.click()
        frame = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#trial-explain iframe"))
        assert frame.get_attribute("sandbox") == ""
        assert "live, trial 0" in frame.get_attribute("srcdoc")

        browser.back()  # keyboard and history reach every view: back to the study
        wait(browser, lambda d: d.find_element(By.ID, "study-title").text == "live")
        browser.get(f"{url}/ui#/")
        wait(browser, lambda d: "2/2" in d.find_element(By.ID, "studies-table").text)
        shot(browser, "studies")
        assert errors(browser) == []
