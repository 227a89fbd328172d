"""The web UI in a real browser: Playwright (sync API) driving Debian's Chromium against a real
``artdag daemon`` (P2P off) whose owner password was set by ``artdag init --password-stdin``.

One daemon and one Chromium serve the whole module; every test opens its own browser context
(its own cookies). Covers: a wrong password and a missing CSRF token are refused; log in,
upload a generated H.264/AAC MP4 through the upload form, see it listed, play it (the
``<video>`` reaches ``readyState >= 2``, seeking to the middle works), open its provenance page
(also without cookies); and a full-page screenshot of every page under
``$ARTDAG_TEST_OUTPUT/screenshots`` (see tests/harness/browser.py).
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.harness.browser import (
    Screenshots,
    launch_chromium,
    log_in,
    require_chromium,
    screenshot_dir,
)
from tests.harness.daemons import DaemonProcess
from tests.harness.media import make_video
from tests.harness.web_daemons import webui_daemon

pytestmark = [pytest.mark.daemon, pytest.mark.browser]

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

VIDEO_SECONDS = 6
DETAIL_URL = re.compile(r"/assets/([A-Za-z0-9]+)$")
RENDER_URL = re.compile(r"/renders/[^/?#.]+$")
TIMEOUT_MS = 20_000
RENDER_SECONDS = 60
SUBRESOURCES = {"stylesheet", "script", "image", "media", "fetch", "xhr", "font"}

VIDEO_READY = """() => { const v = document.querySelector('video');
  return v !== null && v.readyState >= 2; }"""
SEEK_TO_MIDDLE = """async () => {
  const v = document.querySelector('video');
  await new Promise((resolve, reject) => {
    v.addEventListener('seeked', resolve, { once: true });
    v.addEventListener('error', () => reject(new Error('media error ' + v.error.code)),
                       { once: true });
    v.currentTime = v.duration / 2;
  });
  return { currentTime: v.currentTime, duration: v.duration, readyState: v.readyState };
}"""
PLAY_MUTED = """async () => { const v = document.querySelector('video');
  v.muted = true; await v.play(); return !v.paused; }"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    require_chromium()
    with webui_daemon(tmp_path_factory.mktemp("webui") / "home") as d:
        yield d


@pytest.fixture(scope="module")
def browser(daemon: DaemonProcess) -> Iterator[Browser]:
    with launch_chromium() as b:
        yield b


@pytest.fixture(scope="module")
def base_url(daemon: DaemonProcess) -> str:
    return daemon.api_url.rstrip("/")


@pytest.fixture(scope="module")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s 320x180 H.264 + AAC MP4 (Debian's Chromium plays H.264)."""
    path = tmp_path_factory.mktemp("media") / "browser-clip.mp4"
    return make_video(path, seconds=VIDEO_SECONDS, container="mp4")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def asset_cids(daemon: DaemonProcess) -> set[str]:
    listed = daemon.api("GET", "/api/v1/assets", params={"limit": 1000}).json()["assets"]
    return {row["cid"] for row in listed}


def upload_through_form(page: Page, base_url: str, path: Path, tags: str) -> str:
    """Upload ``path`` with the /assets form; returns the CID of the detail page it lands on."""
    page.goto(f"{base_url}/assets")
    form = page.locator("form[data-upload][action='/assets']")
    form.locator("input[type=file][name=file]").set_input_files(str(path))
    form.locator("input[type=text][name=tags]").fill(tags)
    with page.expect_request(lambda r: r.method == "POST") as posted:
        form.locator("[type=submit]").click()
    # artdag.js sends the form with XHR (for the progress bar); the page then follows it.
    assert posted.value.headers.get("x-requested-with") == "XMLHttpRequest", (
        "the upload was not sent by webui/static/artdag.js (did the script load?)"
    )
    page.wait_for_url(DETAIL_URL)
    match = DETAIL_URL.search(page.url)
    assert match is not None, page.url
    return match.group(1)


def render_and_watch(page: Page, shots: Screenshots, cid: str) -> None:
    """Compose a one-step render (greyscale) on /recipes; shoot its progress page, follow its
    JSON status (the one artdag.js polls) to the end, then shoot the finished page."""
    form = page.locator("form[action='/recipes/render']")
    form.locator("input[name=name]").fill("browser-greyscale")
    form.locator("select[name=input_a]").select_option(cid)
    form.locator("select[name=effect1]").select_option("colour")
    form.locator("input[name=params1]").fill("saturation=0")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        form.locator("[type=submit]").click()
    page.wait_for_url(RENDER_URL)
    page.wait_for_load_state()
    shots.check(page, 200, page.url)
    assert posted.value.status in (302, 303), posted.value.status
    shots.take(page, "render-progress")
    url = page.url
    page.goto("about:blank")  # leave artdag.js's poller; follow the JSON status from here
    deadline = time.monotonic() + RENDER_SECONDS
    while True:
        status = page.request.get(f"{url}.json").json()
        if status["state"] != "running":
            break
        assert time.monotonic() < deadline, f"render still running after {RENDER_SECONDS} s"
        time.sleep(0.25)
    assert status["state"] == "done", status
    response = page.goto(url)
    assert response is not None
    shots.check(page, response.status, url)
    assert page.locator("[data-render-state=done]").count() == 1
    shots.take(page, "render-done")
    # The output's provenance page draws the render's graph (an SVG picture).
    page.locator("[data-render-state=done] a[href^='/provenance/']").first.click()
    page.wait_for_url(re.compile(r"/provenance/[A-Za-z0-9]+$"))
    shots.check(page, 200, page.url)
    assert page.locator("main svg").count() >= 1, "no provenance graph on the output's page"
    shots.take(page, "render-provenance")


def test_stylesheet_and_script_load(page: Page, base_url: str) -> None:
    """The frame's CSS and JS (progress bars, XHR upload) reach the browser and apply."""
    loaded: dict[str, int] = {}
    page.on("response", lambda r: loaded.__setitem__(r.url.removeprefix(base_url), r.status))
    page.goto(f"{base_url}/login")
    page.wait_for_load_state("load")
    for path in ("/static/artdag.css", "/static/artdag.js"):
        assert loaded.get(path) == 200, f"GET {path} answered {loaded.get(path)}"
    margin = page.evaluate("() => getComputedStyle(document.body).marginTop")
    assert margin == "0px", "artdag.css is not applied"


def test_wrong_password_is_refused(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=password]", "not the password")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("form[action$='/login'] button[type=submit]")
    assert posted.value.status == 401
    page.wait_for_load_state()
    assert "Wrong password" in page.locator("p.error[role=alert]").inner_text()

    response = page.goto(f"{base_url}/assets")
    assert response is not None and response.ok
    assert re.search(r"/login\?next=(/|%2F)assets$", page.url), page.url
    assert page.locator("form[action$='/logout']").count() == 0


def test_missing_csrf_token_is_refused(
    page: Page, base_url: str, daemon: DaemonProcess, video_file: Path
) -> None:
    posted = log_in(page, base_url)
    assert posted is not None and posted.status in (302, 303), posted
    before = asset_cids(daemon)

    # An upload POST with the session's cookies but no csrf field.
    refused = page.request.post(
        f"{base_url}/assets",
        multipart={
            "file": {
                "name": "sneaky.mp4",
                "mimeType": "video/mp4",
                "buffer": video_file.read_bytes(),
            },
            "tags": "sneaky",
        },
        max_redirects=0,
    )
    assert refused.status == 403, (refused.status, refused.text()[:300])
    assert asset_cids(daemon) == before

    # The logout form submitted after its hidden csrf input is removed.
    page.goto(f"{base_url}/")
    page.evaluate(
        "() => document.querySelector(\"form[action$='/logout'] input[name=csrf]\").remove()"
    )
    with page.expect_response(lambda r: r.request.method == "POST") as logout:
        page.click("form[action$='/logout'] button[type=submit]")
    assert logout.value.status == 403
    page.wait_for_load_state()
    assert "CSRF" in page.locator("p.error[role=alert]").inner_text()

    # Still logged in: the session was not ended.
    response = page.goto(f"{base_url}/assets")
    assert response is not None and response.status == 200
    assert page.url.endswith("/assets"), page.url


def test_upload_list_play_and_provenance(
    page: Page, browser: Browser, base_url: str, daemon: DaemonProcess, video_file: Path
) -> None:
    log_in(page, base_url)
    cid = upload_through_form(page, base_url, video_file, "browser, test clip")
    assert cid in asset_cids(daemon)
    stored = daemon.api("GET", f"/api/v1/assets/{cid}").json()
    assert stored["size"] == video_file.stat().st_size
    assert {"browser", "test clip"} <= set(stored["tags"])

    # Listed.
    page.goto(f"{base_url}/assets")
    row = page.locator(f'tr[data-cid="{cid}"]')
    assert row.count() == 1
    assert video_file.name in row.inner_text()

    # Played: metadata and a frame, then a seek to the middle.
    page.goto(f"{base_url}/assets/{cid}")
    video = page.locator(f'video[controls][src="/ipfs/{cid}"]')
    assert video.count() == 1
    page.wait_for_function(VIDEO_READY, timeout=TIMEOUT_MS)
    duration = page.evaluate("() => document.querySelector('video').duration")
    assert abs(duration - VIDEO_SECONDS) < 0.5, duration
    seeked: dict[str, Any] = page.evaluate(SEEK_TO_MIDDLE)
    assert abs(seeked["currentTime"] - duration / 2) < 0.5, seeked
    page.wait_for_function(VIDEO_READY, timeout=TIMEOUT_MS)
    # And it plays on from there (decoding works, not just metadata).
    assert page.evaluate(PLAY_MUTED) is True
    page.wait_for_function(
        f"() => document.querySelector('video').currentTime > {seeked['currentTime'] + 0.2}",
        timeout=TIMEOUT_MS,
    )
    assert page.evaluate("() => document.querySelector('video').error") is None

    # Its provenance page, through the link.
    link = page.locator(f'a[href="/provenance/{cid}"]')
    assert link.count() >= 1
    with page.expect_navigation():
        link.first.click()
    assert page.url.endswith(f"/provenance/{cid}")
    assert cid in page.content()

    # Public: the detail and provenance pages open without cookies, with no editing forms.
    stranger = browser.new_context()
    try:
        anon = stranger.new_page()
        response = anon.goto(f"{base_url}/provenance/{cid}")
        assert response is not None and response.status == 200
        assert cid in anon.content()
        response = anon.goto(f"{base_url}/assets/{cid}")
        assert response is not None and response.status == 200
        assert anon.locator(f'video[src="/ipfs/{cid}"]').count() == 1
        assert anon.locator("form[method=post]").count() == 0
    finally:
        stranger.close()


def test_screenshots_of_every_page(
    browser: Browser, base_url: str, daemon: DaemonProcess, video_file: Path
) -> None:
    """A full-page PNG of each page; a page may still be a stub, but must not be an error."""
    shots = Screenshots(screenshot_dir())
    added = daemon.api(
        "POST",
        "/api/v1/assets",
        params={"name": video_file.name, "tag": ["browser", "test clip"]},
        content=video_file.read_bytes(),
    )
    assert added.status_code in (200, 201), added.text
    cid = added.json()["cid"]
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    problems: dict[str, None] = {}  # ordered, without repeats
    page = context.new_page()
    page.on("pageerror", lambda exc: problems.setdefault(f"{page.url}: {exc}"))
    page.on(
        "response",
        lambda r: (
            problems.setdefault(f"{page.url}: {r.url} answered {r.status}")
            if r.status >= 400 and r.request.resource_type in SUBRESOURCES
            else None
        ),
    )
    page.on(
        "console",
        lambda msg: (
            problems.setdefault(f"{page.url}: {msg.text}")
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    try:
        shots.visit(page, f"{base_url}/login", "login")
        page.fill("input[name=password]", "wrong password")
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.click("form[action$='/login'] button[type=submit]")
        page.wait_for_load_state()
        shots.check(page, posted.value.status, "/login", status=401, error_expected=True)
        shots.take(page, "login-error")

        log_in(page, base_url)
        shots.visit(page, f"{base_url}/", "home")
        shots.visit(page, f"{base_url}/assets", "assets")

        shots.visit(page, f"{base_url}/assets/{cid}", "asset-detail")
        if page.locator("video").count():
            page.wait_for_function(VIDEO_READY, timeout=TIMEOUT_MS)
            page.evaluate(PLAY_MUTED)
            page.wait_for_function(
                "() => document.querySelector('video').currentTime > 1", timeout=TIMEOUT_MS
            )
            page.evaluate("() => document.querySelector('video').pause()")
            shots.taken.pop().unlink()
            shots.take(page, "asset-detail-playing")

        shots.visit(page, f"{base_url}/provenance/{cid}", "provenance")
        shots.visit(page, f"{base_url}/recipes", "recipes")
        if page.locator("form[action='/recipes/render'] select[name=effect1]").count():
            render_and_watch(page, shots, cid)
        shots.visit(page, f"{base_url}/jobs", "jobs")
        shots.visit(page, f"{base_url}/fediverse", "fediverse")
        shots.visit(page, f"{base_url}/settings", "settings")
    finally:
        context.close()

    assert not problems, "\n".join(problems)
    names = [p.name for p in shots.taken]
    for expected in ("login", "login-error", "home", "assets", "provenance", "settings"):
        assert any(n.endswith(f"-{expected}.png") for n in names), names
    for path in shots.taken:
        assert path.stat().st_size > 1000, path
    for stub in shots.stubs:
        warnings.warn(f"web UI page still a stub: {stub}", stacklevel=1)
