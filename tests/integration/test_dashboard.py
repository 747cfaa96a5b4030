"""The web dashboard in a real browser: Debian's Chromium driven by Playwright, against the admin
listener of a real daemon (two routed `web` instances and a `hup` app, see admin_fixture).

Chromium starts once for the session; each test gets a fresh browser context (no cookies) and
logs in through the page's form. Every wait is on a condition with a deadline (Playwright's
`expect` and `wait_for_function`), never a sleep.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.integration.admin_fixture import Admin

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own download is never used
WAIT_MS = 30_000  # a deadline for what takes a roll of instances; most conditions hold at once


# Module scope: this module is the only one with a browser, so Chromium still starts once per
# session; and Playwright's sync API holds an event loop on the main thread until it stops,
# which makes every later test's asyncio.run() fail ("cannot be called from a running loop").
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser context; the test fails if a script of the page threw."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    context.on("weberror", lambda e: errors.append(str(e.error)))
    try:
        yield context
    finally:
        context.close()
    assert errors == []


def base(admin: Admin) -> str:
    return f"http://127.0.0.1:{admin.port}"


def log_in(context: BrowserContext, admin: Admin, token: str) -> Page:
    page = context.new_page()
    page.goto(base(admin) + "/")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#token", token)
    page.click("#login button[type=submit]")
    return page


@pytest.fixture
def page(context: BrowserContext, admin: Admin) -> Page:
    """The dashboard, logged in, with the `web` app on it."""
    page = log_in(context, admin, admin.token)
    expect(page.locator("article.app[data-app=web]")).to_be_visible()
    return page


def pids_on(page: Page, app: str) -> set[int]:
    cells = page.locator(f"article.app[data-app={app}] td.pid").all_inner_texts()
    return {int(c) for c in cells if c.strip().isdigit()}


def api_pids(admin: Admin, app: str) -> set[int]:
    rows = admin.request("GET", f"/api/status?app={app}").json()
    return {r["pid"] for r in rows if r["kind"] == "instance" and r["pid"]}


def proxy_port(admin: Admin) -> int:
    found = re.search(r'\[proxy\]\s*listen = \["127\.0\.0\.1:(\d+)"\]',
                      admin.wharf.config.read_text())
    assert found is not None
    return int(found.group(1))


def test_the_page_is_served_with_its_assets_and_a_strict_policy(admin: Admin):
    root = admin.request("GET", "/", token=None)
    assert root.status == 302 and root.headers["location"] == "/dashboard/"
    page = admin.request("GET", "/dashboard/", token=None)
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(rb'(?:src|href)="([^"]+)"', page.body)
    assert {b"app.js", b"style.css", b"icon.svg"} <= set(assets)
    for asset in assets:  # every one is served here: nothing comes from afar
        answer = admin.request("GET", "/dashboard/" + asset.decode(), token=None)
        assert answer.status == 200, asset
        assert not re.search(rb"(https?:)?//[\w.-]+\.\w", answer.body.replace(
            b"http://www.w3.org/2000/svg", b"")), asset
    assert admin.request("GET", "/dashboard/../wharf.toml", token=None).status == 404
    assert admin.request("POST", "/dashboard/", token=None).status == 405


def test_logging_in_shows_the_apps_and_their_instances(page: Page, admin: Admin):
    expect(page.locator("article.app[data-app=hup]")).to_be_visible()
    web = page.locator("article.app[data-app=web]")
    expect(web.locator("tbody tr")).to_have_count(2)
    expect(web.locator(".badge").first).to_have_text("2/2 running")
    page.wait_for_function("want => [...document.querySelectorAll("
                           "'article.app[data-app=web] td.pid')].map(c => c.textContent)"
                           ".sort().join() === want",
                           arg=",".join(sorted(str(p) for p in api_pids(admin, "web"))))
    expect(page.locator("tr.backend")).to_have_count(2)
    expect(page.locator("#live")).to_have_text("live")


def test_a_wrong_token_gets_nothing(context: BrowserContext, admin: Admin):
    page = log_in(context, admin, admin.token + "x")
    expect(page.locator("#login-error")).to_be_visible()
    expect(page.locator("#login-error")).to_contain_text("not the admin token")
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page.locator("article.app").count() == 0
    assert page.locator("#apps, #routes, #events, #certs, #logs").evaluate_all(
        "els => els.map(e => e.childElementCount)") == [0, 0, 0, 0, 0]
    assert not {str(p) for p in api_pids(admin, "web")} & set(page.content().split())
    for path in ("/api/status", "/api/traffic", "/api/events", "/api/certs"):
        assert context.request.get(base(admin) + path).status == 401, path


def test_logging_out_clears_the_page_and_the_session(page: Page, context: BrowserContext,
                                                     admin: Admin):
    assert context.request.get(base(admin) + "/api/status").status == 200
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    assert page.locator("article.app").count() == 0
    assert context.request.get(base(admin) + "/api/status").status == 401


def test_requests_through_the_proxy_move_the_counters(page: Page, admin: Admin):
    route = page.locator("tr.route[data-route='*/']")
    expect(route).to_be_visible()
    before = int(route.locator("td").last.inner_text().replace(",", ""))
    sent = 200
    conn = http.client.HTTPConnection("127.0.0.1", proxy_port(admin), timeout=10)
    try:
        for _ in range(sent):
            conn.request("GET", "/")
            assert conn.getresponse().read().startswith(b"instance=")
    finally:
        conn.close()
    page.wait_for_function(
        "want => +document.querySelector(\"tr.route[data-route='*/'] td:last-child\")"
        ".textContent.replace(/,/g, '') >= want", arg=before + sent)
    rate = route.locator("td").nth(3)  # req/s: over the last 5 s, so above 0 now
    moving = re.compile(r"^(?!0$)\d[\d.,]*$")  # a number, not 0 (nor the dash of no data)
    expect(rate).to_have_text(moving)
    expect(page.locator("#sum-rps")).to_have_text(moving)


def test_restart_from_the_page_shows_the_new_pids(page: Page, admin: Admin):
    old = api_pids(admin, "web")
    page.wait_for_function("n => document.querySelectorAll("
                           "'article.app[data-app=web] td.pid').length === n", arg=len(old))
    assert pids_on(page, "web") == old
    page.click("article.app[data-app=web] [data-action=restart]")
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-ok")
    expect(page.locator(".toast.ok")).to_contain_text("web: restarting done")
    new = api_pids(admin, "web")
    assert len(new) == 2 and not new & old
    page.wait_for_function("want => [...document.querySelectorAll("
                           "'article.app[data-app=web] td.pid')].map(c => c.textContent)"
                           ".sort().join() === want",
                           arg=",".join(sorted(str(p) for p in new)))


def test_cancelling_the_confirmation_restarts_nothing(page: Page, admin: Admin):
    old = api_pids(admin, "hup")
    page.click("article.app[data-app=hup] [data-action=restart]")
    page.click("#confirm button[value=cancel]")
    expect(page.locator("#confirm")).to_be_hidden()
    assert page.locator(".toast").count() == 0
    assert api_pids(admin, "hup") == old


def test_a_restart_adds_a_line_to_the_events(page: Page, admin: Admin):
    events = page.locator("#events li")
    expect(events.first).to_be_visible()  # the history
    last = int(events.first.get_attribute("data-seq") or 0)
    answer = admin.request("POST", "/api/apps/hup/restart")
    assert answer.status == 200, answer.body
    fresh = page.locator("#events li[data-kind='instance.started']", has_text="hup.0")
    page.wait_for_function("last => +document.querySelector('#events li').dataset.seq > last",
                           arg=last)
    expect(fresh.first).to_be_visible()
    assert int(fresh.first.get_attribute("data-seq") or 0) > last


def test_the_log_tail_shows_a_line_the_app_prints(page: Page, admin: Admin):
    page.click("article.app[data-app=hup] [data-action=logs]")
    expect(page.locator("#logs-title")).to_have_text("Logs: hup")
    expect(page.locator("#logs")).to_contain_text("ready")  # the tail: its first line
    assert "reloaded" not in page.locator("#logs").inner_text()
    answer = admin.request("POST", "/api/apps/hup/signal?signal=HUP")
    assert answer.status == 200, answer.body
    expect(page.locator("#logs")).to_contain_text("reloaded")  # followed, as it is printed


def test_scale_from_the_page(page: Page, admin: Admin):
    page.click("article.app[data-app=hup] [data-action=scale]")
    expect(page.locator("#confirm-count")).to_have_value("1")
    page.fill("#confirm-count", "2")
    page.click("#confirm-ok")
    expect(page.locator("article.app[data-app=hup] tbody tr")).to_have_count(2)
    expect(page.locator(".toast.ok")).to_contain_text("hup: scaling done")
    assert len(api_pids(admin, "hup")) == 2
    assert admin.request("POST", "/api/apps/hup/scale?count=1").status == 200
    expect(page.locator("article.app[data-app=hup] tbody tr")).to_have_count(1)


def test_the_page_computes_quantiles_and_rates_as_prometheus_does(page: Page):
    # stats.js itself, in the page: histogram_quantile's linear interpolation in a bucket.
    got = page.evaluate("""async () => {
        const s = await import('./stats.js');
        const bounds = [0.005, 0.01, 0.025];
        const r = s.rates({requests: [0, 0, 18, 0, 0, 2], duration: {buckets: [4, 4, 2, 0]}},
                          {requests: [0, 0, 8, 0, 0, 0], duration: {buckets: [0, 0, 0, 0]}},
                          2, bounds, "duration");
        return {p50: s.quantile(0.5, bounds, [10, 10, 0, 0]).seconds,
                top: s.quantile(0.99, bounds, [0, 0, 0, 5]),
                none: s.quantile(0.5, bounds, [0, 0, 0, 0]),
                rps: r.rps, errors: r.errorRate, total: r.total, p99: r.p99.seconds,
                reset: s.rates({requests: [0, 0, 3, 0, 0, 0], duration: {buckets: [3, 0, 0, 0]}},
                               {requests: [0, 0, 9, 0, 0, 0], duration: {buckets: [9, 0, 0, 0]}},
                               1, bounds, "duration").rps};
    }""")
    assert got["p50"] == 0.005  # the 10th of 20 observations: the top of the first bucket
    assert got["top"] == {"seconds": 0.025, "above": True}  # above every bound
    assert got["none"] is None
    assert got["rps"] == 6 and got["errors"] == 2 / 12 and got["total"] == 20  # 12 new, 2 bad
    assert abs(got["p99"] - (0.01 + 0.015 * (9.9 - 8) / 2)) < 1e-12
    assert got["reset"] == 3  # a counter that went down: counted from zero
