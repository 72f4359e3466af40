"""The retention desk in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium) against a really started `churn desk` on the sample's trained, scored list."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.test_api_server import free_port, wait_until_ready

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
PASSWORD = "correct horse battery staple"
SESSION_KEY = "s" * 40

if not (CHROMIUM and DRIVER):
    pytest.skip(
        "BROWSER TESTS SKIPPED: no chromium and chromedriver on PATH (install Debian's chromium and "
        "chromium-driver; .ci/run does)",
        allow_module_level=True,
    )


def _churn(*args: str, stdin: str | None = None, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("churn")), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


@pytest.fixture(scope="module")
def desk(api_env):
    import sqlalchemy as sa

    env = dict(os.environ) | {"CHURN_DESK_SESSION_KEY": SESSION_KEY}
    engine = sa.create_engine(os.environ["CHURN_DATABASE_URL"])
    with engine.connect() as connection:
        as_of = connection.execute(sa.text("SELECT MAX(as_of) FROM risk_list")).scalar()
        branches = [
            r[0]
            for r in connection.execute(
                sa.text(
                    "SELECT branch_id, COUNT(*) FROM risk_list WHERE as_of = :d AND status = 'scored' "
                    "GROUP BY branch_id ORDER BY COUNT(*) DESC"
                ),
                {"d": as_of},
            )
        ]
    engine.dispose()
    for name, role, branch in (
        ("lena", "lead", None),
        ("bram", "branch", branches[0]),
        ("aude", "audit", None),
    ):
        extra = ["--branch", str(branch)] if branch else []
        done = _churn("users", "add", name, "--role", role, *extra, stdin=PASSWORD + "\n", env=env)
        assert done.returncode == 0, done.stderr
    port = free_port()
    log_path = api_env / f"desk-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("churn")), "desk", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(process, f"{url}/desk/login", log_path, 60)
    yield {"url": url, "branches": branches, "as_of": as_of, "log": log_path, "env": env}
    process.terminate()
    process.wait(20)
    log.close()


@pytest.fixture()
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(tmp_path), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.implicitly_wait(5)
    driver.downloads = tmp_path
    yield driver
    driver.quit()


def _size(path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # the reservation renamed over between the glob and the stat
        return 0


def _downloaded(folder, pattern: str, timeout: float = 20):
    """The one file Chromium finished downloading into folder. Chromium reserves the final name
    with an empty file, writes into a .crdownload beside it and renames that over it at the end,
    so a file by the final name alone is not yet the download."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [f for f in folder.glob(pattern) if _size(f) > 0]
        if done and not list(folder.glob("*.crdownload")):
            return done[0]
        time.sleep(0.2)
    raise AssertionError(
        f"no finished download matching {pattern} in {timeout:.0f} s: {sorted(folder.iterdir())}"
    )


def _navigate(browser, selector: str, by: str = "id") -> None:
    """Click what submits a form or follows a link, and wait until the new page replaced the old
    (reading an element at once may find the old page's, which then goes stale)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(by, selector).click()

    def replaced(_) -> bool:
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:  # chromedriver, caught mid-navigation, says it this way
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    WebDriverWait(browser, 15).until(replaced)


def _login(browser, desk, name: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{desk['url']}/desk/list")
    assert browser.current_url.endswith("/desk/login"), "without a session every page sends to the login"
    browser.find_element(By.NAME, "name").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    _navigate(browser, "form button[type=submit]", By.CSS_SELECTOR)
    errors = browser.find_elements(By.CSS_SELECTOR, ".error")
    assert not errors, errors[0].text
    assert "expired" not in browser.page_source, (browser.get_cookies(), browser.page_source[:2000])


def _history(browser) -> int:
    from selenium.webdriver.common.by import By

    cells = browser.find_elements(By.CSS_SELECTOR, "#contact-history tbody tr td:first-child")
    return sum(c.text != "No contacts." for c in cells)


def _column(browser, index: int) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        c.text for c in browser.find_elements(By.CSS_SELECTOR, f"#risk-list tbody tr td:nth-child({index})")
    ]


def test_lead__filters_opens_a_customer_sees_the_chart_and_records_an_outcome_the_policy_counts(
    browser, desk
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _login(browser, desk, "lena")
    assert browser.current_url.endswith("/desk/list")
    everyone = int(browser.find_element(By.ID, "total").text)
    Select(browser.find_element(By.NAME, "tier")).select_by_value("high")
    _navigate(browser, "apply")
    high = int(browser.find_element(By.ID, "total").text)
    assert 0 < high < everyone
    assert set(_column(browser, 7)) == {"high"}
    _navigate(browser, "#risk-list tbody tr td:nth-child(2) a", By.CSS_SELECTOR)
    chart = browser.find_element(By.CSS_SELECTOR, "#shap-chart img.chart")
    assert chart.is_displayed() and browser.execute_script("return arguments[0].naturalWidth", chart) > 100
    assert browser.find_element(By.ID, "action").text
    before = int(browser.find_element(By.ID, "contacts-quarter").text)
    rows_before = _history(browser)

    # a date in the future is refused with the field named, in the form, through the API's rules
    when = browser.find_element(By.NAME, "contacted_at")
    browser.execute_script(
        "arguments[0].value = arguments[1]",
        when,
        (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
    )
    _navigate(browser, "record")
    assert "contacted_at: in the future" in browser.find_element(By.ID, "form-error").text

    Select(browser.find_element(By.NAME, "channel")).select_by_visible_text("phone")
    browser.execute_script(
        "arguments[0].value = arguments[1]",
        browser.find_element(By.NAME, "contacted_at"),
        (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
    )
    Select(browser.find_element(By.NAME, "offer_accepted")).select_by_value("yes")
    _navigate(browser, "record")
    assert "Outcome recorded" in browser.find_element(By.ID, "recorded").text
    assert int(browser.find_element(By.ID, "contacts-quarter").text) == before + 1
    assert _history(browser) == rows_before + 1
    assert browser.find_element(By.ID, "contactable-again").is_displayed()


def test_branch_staff__see_only_their_branch_and_are_refused_another_branchs_customer(browser, desk):
    from selenium.webdriver.common.by import By

    _login(browser, desk, "bram")
    mine = str(desk["branches"][0])
    assert set(_column(browser, 3)) == {mine}
    import sqlalchemy as sa

    engine = sa.create_engine(os.environ["CHURN_DATABASE_URL"])
    with engine.connect() as connection:
        other = connection.execute(
            sa.text("SELECT customer_id FROM risk_list WHERE as_of = :d AND branch_id != :b LIMIT 1"),
            {"d": desk["as_of"], "b": mine},
        ).scalar()
    engine.dispose()
    browser.get(f"{desk['url']}/desk/customer/{other}")
    assert "another branch" in browser.find_element(By.TAG_NAME, "h1").text
    browser.get(f"{desk['url']}/desk/overview")
    assert "cannot open this page" in browser.find_element(By.TAG_NAME, "h1").text


def test_export__the_filtered_view_downloads_as_csv_with_every_row(browser, desk):
    import pandas as pd
    from selenium.webdriver.common.by import By

    _login(browser, desk, "lena")
    browser.get(f"{desk['url']}/desk/list?decision=contact")
    total = int(browser.find_element(By.ID, "total").text)
    browser.find_element(By.ID, "export-csv").click()
    frame = pd.read_csv(_downloaded(browser.downloads, "*.csv"))
    assert len(frame) == total and frame["contact"].all()


def test_audit__overview_charts_and_the_access_log_no_customer_pages(browser, desk):
    from selenium.webdriver.common.by import By

    _login(browser, desk, "aude")
    assert browser.current_url.endswith("/desk/overview")
    assert len(browser.find_elements(By.CSS_SELECTOR, "img.chart")) >= 4
    browser.get(f"{desk['url']}/desk/audit")
    pages = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#audit-log tbody tr td:nth-child(4)")]
    users = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#audit-log tbody tr td:nth-child(2)")]
    assert "customer" in pages and "lena" in users
    assert "customer refused" in pages, "bram's refused page is logged too"
    browser.get(f"{desk['url']}/desk/list")
    assert "cannot open this page" in browser.find_element(By.TAG_NAME, "h1").text
    log = desk["log"].read_text()
    assert "Traceback" not in log
