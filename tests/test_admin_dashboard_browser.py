"""The dashboard in a real headless Chromium: sign in, the charts show the seeded numbers, no CSP violation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.admin_support import ADMIN_TOKEN, RANGE, seed
from tests.analytics_support import AnalyticsApps
from tests.browser_support import LiveServer, launch_chromium, require_playwright

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def live_server(make_app, database_url, tmp_path):
    apps = AnalyticsApps(make_app, database_url, tmp_path)
    app = apps(CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN)
    seed(app)
    server = LiveServer(app)
    yield server.url
    server.stop()
    apps.close()


def test_dashboard_charts_show_the_seeded_numbers_in_chromium(live_server, database_url):
    sync_playwright = require_playwright()
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{live_server}/admin", timeout=15000)
            page.fill("#token", ADMIN_TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("#chart-message", timeout=15000)
            page.goto(f"{live_server}/admin?{RANGE}", timeout=15000)

            def values(chart: str) -> list[int]:
                return [
                    int(v)
                    for v in page.locator(f"#chart-{chart} g.bucket").evaluate_all(
                        "nodes => nodes.map(n => n.dataset.value)"
                    )
                ]

            assert values("message") == [0, 3, 5, 0]
            assert values("thread_change") == [0, 1, 2, 0]
            assert values("sessions") == [0, 2, 1, 0]
            assert page.locator("#chart-message .total").inner_text() == "8"
            assert page.locator("#chart-message text.value").evaluate_all("ns => ns.map(n => n.textContent)") == [
                "3",
                "5",
            ]
            assert page.locator("#sessions-issued").inner_text() == "3"
            assert page.locator("#top-errors td.count").all_inner_texts() == ["3", "1"]
            # The stylesheet applied (strict CSP allows 'self' styles only): bars are drawn with height and colour.
            fill = page.locator("#chart-message rect.bar").nth(2).evaluate("n => getComputedStyle(n).fill")
            assert fill == "rgb(47, 158, 110)"
            height = page.locator("#chart-message rect.bar").nth(2).evaluate("n => n.getBBox().height")
            assert height > 0
            page.screenshot(path=str(ARTIFACTS / f"admin-dashboard-{database_url.split(':')[0]}.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
