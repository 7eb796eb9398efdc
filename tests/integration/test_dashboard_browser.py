"""The dashboard as a person sees it: headless Chromium (Debian's chromium and its driver,
through Selenium) loads the page while a job runs, and sees the job go from running to done
without the page being reloaded. The page's screenshot is kept (MAPREDUCE_SCREENSHOT names
where; the README's is made so)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
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


def row_state(browser: webdriver.Chrome, pipeline_id: str) -> str | None:
    rows = browser.find_elements(By.CSS_SELECTOR, f'tr[data-pipeline="{pipeline_id}"]')
    return rows[0].get_attribute("data-state") if rows else None


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
                WebDriverWait(browser, 30).until(
                    lambda b: row_state(b, job.pipeline_id) == "running")
                # the workers' next heartbeats carry their partitions and figures
                WebDriverWait(browser, 30).until(lambda b: any(
                    cell.text for cell in b.find_elements(
                        By.CSS_SELECTOR, "#workers tbody td.partitions")))
                loaded = browser.execute_script("return document.body.dataset.loadedAt")
                refreshes = int(browser.execute_script(
                    "return document.body.dataset.refreshes"))
                mid_job = tmp_path / "running.png"
                browser.save_screenshot(str(mid_job))
            jobs.wait(pool, job)
            WebDriverWait(browser, 30).until(lambda b: row_state(b, job.pipeline_id) == "done")
            assert browser.execute_script("return document.body.dataset.loadedAt") == loaded
            assert int(browser.execute_script("return document.body.dataset.refreshes")) > \
                refreshes
            for pipeline_id in (earlier.pipeline_id, job.pipeline_id):
                timeline = browser.find_elements(
                    By.CSS_SELECTOR, f'tr[data-pipeline="{pipeline_id}"] .timeline .phase')
                assert len(timeline) == 7  # submit .. finalize, all drawn
            workers = browser.find_elements(By.CSS_SELECTOR, "#workers tbody tr")
            assert len(workers) >= 8
    finally:
        browser.quit()
    assert mid_job.read_bytes().startswith(b"\x89PNG")
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copy(mid_job, Path(os.environ[SCREENSHOT_ENV]))
