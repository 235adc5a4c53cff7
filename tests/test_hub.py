"""The hub in a real browser (Debian's Chromium driven by Playwright) on the real API and
Streamlit processes: sign in, read the model's numbers, the trust page, memory, approve a plan
that resumes its paused flow; another tenant's user sees none of it. Screenshots of each page
are kept in ``test-artifacts/hub/``."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from pathlib import Path

import pytest
from support import REPO, api_tenants, free_port, local_server

CHROMIUM = Path(os.environ.get("LIFTOS_TEST_CHROMIUM", "/usr/bin/chromium"))
SHOTS = REPO / "test-artifacts" / "hub"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium; "
                                  "CI installs it)")]


@pytest.fixture(scope="module")
def hub(synthetic_fit, prefect_api, tmp_path_factory):
    """The API and the hub as two processes over one home, on the session's Prefect API."""
    from prefect.settings import PREFECT_API_URL

    from liftos.home import DataHome
    from liftos.memory.store import Memory, MemoryStore

    root = tmp_path_factory.mktemp("hub")
    home = DataHome(root / "home")
    secrets = api_tenants(home, synthetic_fit)
    from datetime import date

    MemoryStore(home.root / "memory").remember([
        Memory(tenant="acme", kind="insight", channel="tv",
               text="tv stopped paying back after the autumn price rise"),
        *(Memory(tenant="acme", kind="situation", run_id=f"run-{k}", date_end=date(2025, 9, 1 + k),
                 text=text) for k, text in enumerate((
                     "search leads, tv weakest after a price rise",
                     "tv recovered once the promotion ended",
                     "search leads, tv weakest after a second price rise")))])
    env = {**os.environ, "LIFTOS_HOME": str(home.root), "PREFECT_API_URL": PREFECT_API_URL.value()}
    api_port, page_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    with local_server([sys.executable, "-m", "liftos_app.cli", "api", "serve", "--port",
                       str(api_port)], f"{api_url}/v1/health", root / "api.log", env), \
         local_server([sys.executable, "-m", "streamlit", "run", str(REPO / "hub" / "page.py"),
                       "--server.port", str(page_port), "--server.headless", "true",
                       "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
                       "--client.toolbarMode", "viewer"],
                      f"http://127.0.0.1:{page_port}/_stcore/health", root / "page.log",
                      {**env, "LIFTOS_API_URL": api_url}):
        yield {"home": home, "secrets": secrets, "url": f"http://127.0.0.1:{page_port}"}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _signed_in(browser, hub, who: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(hub["url"])
    page.get_by_label("API token", exact=True).fill(hub["secrets"][who])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"signed in as {who}").wait_for(timeout=30_000)
    return page


def _open(page, name: str, expect: str) -> str:
    page.locator("[data-testid='stSidebar'] label").filter(has_text=re.compile(
        f"^{name}$")).click()
    page.get_by_text(expect).first.wait_for(timeout=30_000)
    _settled(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name.lower()}.png"), full_page=True)
    return page.locator("[data-testid='stMain']").inner_text()


def _settled(page) -> None:
    """Wait until the page's script run is over: no element left over from the previous page
    (Streamlit marks those stale) and no run in progress."""
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]') && "
                           "!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')",
                           timeout=30_000)


def _table(page) -> dict[str, str]:
    """The first table's rows by their first cell: 'cell | cell | ...'."""
    rows = {}
    for row in page.locator("[data-testid='stTable'] tr").all():
        cells = [c.inner_text().strip() for c in row.locator("th, td").all()]
        rows[cells[0]] = " | ".join(cells)
    return rows


def test_the_channels_page_shows_the_models_numbers(browser, hub):
    page = _signed_in(browser, hub, "alice")
    _open(page, "Overview", "Trust score")
    _open(page, "Channels", "Response curves")
    summary = json.loads((Path(hub["home"].champion("acme")["fit_dir"]) / "summary.json"
                          ).read_text())
    rows = _table(page)
    for name, channel in summary["channels"].items():
        if name == "tv":
            assert "not recoverable" in rows[name], rows
            assert f"{channel['roas_mean']:.2f}" not in rows[name]
            continue
        assert f"{channel['roas_mean']:.2f}" in rows[name], (name, rows.get(name))
        assert (f"{channel['roas_hdi_low']:.2f} – {channel['roas_hdi_high']:.2f}" in rows[name])
    page.close()


def test_the_trust_page_explains_failed_checks_and_memory_answers(browser, hub):
    page = _signed_in(browser, hub, "alice")
    text = _open(page, "Trust", "trust score 82.5")
    assert "1 check(s) failed" in text and "tv: error 55%" in text
    text = _open(page, "Memory", "Past situations most like this week")
    assert "What followed: tv recovered once the promotion ended" in text
    page.get_by_label("Search memory").fill("when did tv stop working")
    page.get_by_label("Search memory").press("Enter")
    page.get_by_text("autumn price rise").wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "memory-search.png"), full_page=True)
    page.close()


def test_a_user_of_another_tenant_sees_none_of_its_names_or_numbers(browser, hub):
    summary = json.loads((Path(hub["home"].champion("acme")["fit_dir"]) / "summary.json"
                          ).read_text())
    acme_numbers = {f"{c['roas_mean']:.2f}" for c in summary["channels"].values()}
    page = _signed_in(browser, hub, "bob")
    seen = [_open(page, "Overview", "Plans waiting for you")]
    seen.append(_open(page, "Channels", "Response curves"))
    for name, expect in (("Trust", "no validated model"), ("Plans", "budget plans"),
                         ("Data", "data quality")):
        seen.append(_open(page, name, expect))
    _open(page, "Memory", "what we learned")
    page.get_by_label("Search memory").fill("tv price rise")
    page.get_by_label("Search memory").press("Enter")
    page.get_by_text("Nothing remembered matches").wait_for(timeout=30_000)
    _settled(page)
    seen.append(page.locator("[data-testid='stMain']").inner_text())
    seen.append(page.locator("[data-testid='stSidebar']").inner_text())
    text = "\n".join(seen)
    assert "acme" not in text and "autumn" not in text
    assert not {n for n in acme_numbers if re.search(rf"(?<![\d.]){re.escape(n)}(?!\d)", text)}
    page.close()


def test_approving_a_plan_in_the_browser_resumes_the_paused_flow(browser, hub, monkeypatch):
    from liftos.planning.audit import DecisionLog
    from liftos_app.flows.plan import budget_plan

    monkeypatch.setenv("LIFTOS_HOME", str(hub["home"].root))
    holder: dict = {}

    def plan() -> None:  # the result is read here: Playwright runs an event loop in this thread
        holder["state"] = budget_plan(tenant="acme", poll_s=1, return_state=True)
        holder["decision"] = holder["state"].result()

    thread = threading.Thread(target=plan, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not DecisionLog("acme").records():
        assert time.monotonic() < deadline and thread.is_alive(), "no plan was proposed"
        time.sleep(0.3)
    page = _signed_in(browser, hub, "ops")
    _open(page, "Plans", "Plan #1 waits for a decision")
    page.get_by_label("Comment").fill("agreed in the Monday meeting")
    try:
        while True:  # the proposal is recorded a moment before the flow pauses
            page.get_by_role("button", name="Send decision").click()
            done = page.get_by_text(re.compile("Decision sent|not waiting|did not answer")).first
            done.wait_for(timeout=90_000)
            if "Decision sent" in done.inner_text() or time.monotonic() > deadline + 60:
                break
            time.sleep(0.5)
    finally:
        page.screenshot(path=str(SHOTS / "plans-approved.png"), full_page=True)
    assert "Decision sent" in done.inner_text(), page.locator("[data-testid='stMain']"
                                                             ).inner_text()
    # The resumed flow's last state change goes through the session's SQLite test server,
    # which other processes write to as well: in CI it once waited out a lock for over 60 s.
    thread.join(240)
    assert "state" in holder, "the resumed flow had not finished 240 s after the decision"
    assert holder["state"].is_completed(), holder["state"].message
    decision = holder["decision"]
    assert decision.payload["verdict"] == "approved" and decision.payload["by"] == "ops"
    assert decision.payload["comment"] == "agreed in the Monday meeting"
    page.close()


def test_liftos_hub_starts_both_prints_a_login_and_revokes_it_on_exit(tmp_path):
    import signal
    import subprocess

    import httpx

    from liftos.access import TokenStore
    from liftos.home import DataHome

    api_port, page_port = free_port(), free_port()
    env = {**os.environ, "LIFTOS_HOME": str(tmp_path / "home")}
    hub = subprocess.Popen([sys.executable, "-m", "liftos_app.cli", "hub", "--port",
                            str(page_port), "--api-port", str(api_port)], env=env,
                           stdout=subprocess.PIPE, text=True)
    try:
        lines = [hub.stdout.readline() for _ in range(3)]
        token = lines[1].removeprefix("sign in with: ").strip()
        assert lines[0].startswith(f"LiftOS hub: http://127.0.0.1:{page_port}"), lines
        deadline = time.monotonic() + 60
        while True:
            try:
                me = httpx.get(f"http://127.0.0.1:{api_port}/v1/me", timeout=2,
                               headers={"Authorization": f"Bearer {token}"})
                page = httpx.get(f"http://127.0.0.1:{page_port}/_stcore/health", timeout=2)
                if me.status_code == 200 and page.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and hub.poll() is None, "the hub did not start"
            time.sleep(0.3)
        assert me.json()["tenants"] == ["demo"] and me.json()["name"] == "hub login"
    finally:
        hub.send_signal(signal.SIGINT)
        hub.wait(timeout=60)
    tokens = TokenStore(DataHome(tmp_path / "home")).list()
    assert len(tokens) == 1 and tokens[0].revoked_at is not None
