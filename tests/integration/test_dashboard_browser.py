"""The dashboard as a person sees it: headless Chromium (Debian's chromium and its driver,
through Selenium) loads the page while a job runs, and sees the job go from running to done
without the page being reloaded. The page's screenshot is kept (MAPREDUCE_SCREENSHOT names
where; the README's is made so).

The page re-renders its tables on every refresh, so an element found once may be gone by
the time it is read (StaleElementReferenceException). Every read here finds and reads in
one script, which runs between two renders, inside a wait that retries until it holds."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from mapreduce_kafka.services.testing.corpus import make_corpus
from tests import REPO
from tests.integration import jobs
from tests.integration.dashboard import serving

pytestmark = pytest.mark.integration
SCREENSHOT_ENV = "MAPREDUCE_SCREENSHOT"


def chromium() -> webdriver.Chrome:
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary and driver, ("Debian's chromium and chromium-driver are needed "
                               "(make install installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1500,900"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


def page(browser: webdriver.Chrome, script: str, *args: Any) -> Any:
    """What a script reads from the page: found and read in one go, between two renders."""
    return browser.execute_script(script, *args)


def until(browser: webdriver.Chrome, condition: Callable[[webdriver.Chrome], Any],
          timeout: float = 30) -> Any:
    """Wait for a condition, read afresh on each try (a stale element is one more try)."""
    return WebDriverWait(browser, timeout, ignored_exceptions=(
        StaleElementReferenceException,)).until(condition)


def row_state(browser: webdriver.Chrome, pipeline_id: str) -> str | None:
    return page(browser, "const row = document.querySelector("
                         "`tr[data-pipeline=\"${arguments[0]}\"]`);"
                         "return row ? row.dataset.state : null;", pipeline_id)


def worker_partitions_shown(browser: webdriver.Chrome) -> bool:
    return bool(page(browser, "return [...document.querySelectorAll("
                              "'#workers tbody td.partitions')].some(c => c.textContent.trim())"))


def count(browser: webdriver.Chrome, selector: str) -> int:
    return int(page(browser, "return document.querySelectorAll(arguments[0]).length",
                    selector))


def test_a_running_job_goes_to_done_on_the_page_without_a_reload(pool, tmp_path):
    earlier = jobs.submit(pool, jobs.WORDCOUNT, [REPO / "pipelines" / "samples" / "text"],
                          tmp_path / "earlier")
    jobs.wait(pool, earlier)  # a finished job beside the running one
    browser = chromium()
    try:
        with serving(pool) as base:
            corpus = make_corpus(tmp_path / "in", 4)
            with jobs.paused_mid_stream(pool, jobs.WORDCOUNT, corpus, tmp_path / "out") as job:
                browser.get(base)
                until(browser, lambda b: row_state(b, job.pipeline_id) == "running")
                # the workers' next heartbeats carry their partitions and figures
                until(browser, worker_partitions_shown)
                loaded = browser.execute_script("return document.body.dataset.loadedAt")
                refreshes = int(browser.execute_script(
                    "return document.body.dataset.refreshes"))
                mid_job = tmp_path / "running.png"
                browser.save_screenshot(str(mid_job))
            jobs.wait(pool, job)
            until(browser, lambda b: row_state(b, job.pipeline_id) == "done")
            assert browser.execute_script("return document.body.dataset.loadedAt") == loaded
            assert int(browser.execute_script("return document.body.dataset.refreshes")) > \
                refreshes
            for pipeline_id in (earlier.pipeline_id, job.pipeline_id):
                phases = count(browser, f'tr[data-pipeline="{pipeline_id}"] .timeline .phase')
                assert phases == 7  # submit .. finalize, all drawn
            assert count(browser, "#workers tbody tr") >= 8
    finally:
        browser.quit()
    assert mid_job.read_bytes().startswith(b"\x89PNG")
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copy(mid_job, Path(os.environ[SCREENSHOT_ENV]))
