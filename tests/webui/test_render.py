"""The recipes, renders and jobs pages against a real ``artdag daemon`` (P2P off) whose owner
password was set by ``artdag init --password-stdin``: log in with httpx (cookies, CSRF tokens
read from the forms), upload a generated video, compose a two-step recipe in the form, follow
the progress JSON until the real ffmpeg render is done, then fetch the output from the gateway
and its provenance. Nothing is mocked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.harness.daemons import DaemonProcess
from tests.harness.media import make_video
from tests.harness.web_daemons import csrf_of, log_in_client

pytestmark = [pytest.mark.daemon, pytest.mark.ffmpeg]

RENDER_DEADLINE_S = 90.0


@pytest.fixture(scope="module")
def clip(daemon: DaemonProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = make_video(tmp_path_factory.mktemp("media") / "clip.mkv", seconds=1, size="160x90")
    return str(daemon.add_bytes(path.read_bytes(), "clip.mkv")["cid"])


@pytest.fixture
def browser(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=daemon.api_url, timeout=30) as client:
        response = log_in_client(client)
        assert response.status_code == 302, response.text
        yield client


def _compose(browser: httpx.Client, clip: str, **steps: str) -> httpx.Response:
    page = browser.get("/recipes")
    assert page.status_code == 200
    form = {"csrf": csrf_of(page.text), "name": "web-chain", "input_a": clip, "input_b": ""}
    return browser.post("/recipes/render", data=form | steps)


def test_compose_render_and_follow_progress(browser: httpx.Client, clip: str) -> None:
    page = browser.get("/recipes")
    assert f'value="{clip}"' in page.text  # the asset is offered as an input
    assert "glitch" in page.text and "noise" in page.text  # the effects and their params
    started = _compose(
        browser,
        clip,
        effect1="resize",
        params1="width=128, height=72",
        effect2="glitch",
        params2="noise=20, seed=3",
    )
    assert started.status_code == 303, started.text
    where = started.headers["location"]
    assert re.fullmatch(r"/renders/[0-9a-f]+", where)
    progress_page = browser.get(where)
    assert progress_page.status_code == 200
    assert "<progress" in progress_page.text
    deadline = time.monotonic() + RENDER_DEADLINE_S
    while True:
        state = browser.get(f"{where}.json").json()
        assert state["state"] in ("running", "done"), state
        if state["state"] == "done":
            break
        assert time.monotonic() < deadline, f"render not done in {RENDER_DEADLINE_S}s: {state}"
        time.sleep(0.2)
    output, provenance = state["output"], state["provenance"]
    assert state["done"] > 0 and state["done"] == state["total"]
    finished = browser.get(where).text
    assert "data-poll" not in finished  # a finished page does not poll (and reload) again
    assert f'href="/assets/{output}"' in finished and f'href="/provenance/{output}"' in finished
    media = browser.get(f"/ipfs/{output}")
    assert media.status_code == 200
    assert media.content[4:8] == b"ftyp"  # the delivery format: MP4
    graph = browser.get(f"/provenance/{output}", params={"format": "json"})
    assert graph.status_code == 200
    nodes = graph.json()["graph"]["nodes"]
    assert {n["attrs"]["name"] for n in nodes if n["kind"] == "effect"} == {"resize", "glitch"}
    assert provenance in {n["id"] for n in nodes if n["kind"] == "provenance"}
    assert "web-chain" in browser.get("/recipes").text  # listed under recent renders


def test_bad_params_are_refused_with_the_renderers_message(
    browser: httpx.Client, clip: str
) -> None:
    wrong_type = _compose(browser, clip, effect1="glitch", params1="noise=loud")
    assert wrong_type.status_code == 400
    assert "node &#39;step1&#39;: param &#39;noise&#39;: expected an integer" in wrong_type.text
    out_of_range = _compose(browser, clip, effect1="glitch", params1="noise=500")
    assert out_of_range.status_code == 400 and "out of range 0..100" in out_of_range.text
    unknown = _compose(browser, clip, effect1="glitch", params1="loudness=3")
    assert unknown.status_code == 400 and "has no such parameter" in unknown.text
    required = _compose(browser, clip, effect1="resize", params1="width=64, height=")
    assert (
        required.status_code == 400 and "param &#39;height&#39;: resize needs it" in required.text
    )
    not_a_pair = _compose(browser, clip, effect1="glitch", params1="noise")
    assert not_a_pair.status_code == 400 and "key=value" in not_a_pair.text
    assert 'value="noise"' in not_a_pair.text  # the form keeps what was typed
    second = _compose(browser, clip, effect1="blend")
    assert second.status_code == 400 and "choose the second asset" in second.text


def test_jobs_page_says_the_market_is_off_without_p2p(browser: httpx.Client) -> None:
    page = browser.get("/jobs", params={"role": "volunteer"})
    assert page.status_code == 200
    assert 'data-market="off"' in page.text and "not running" in page.text


def test_pages_need_login_andcsrf_of(daemon: DaemonProcess, browser: httpx.Client) -> None:
    with httpx.Client(base_url=daemon.api_url, timeout=30) as stranger:
        for path in ("/recipes", "/jobs", "/renders/0123456789abcdef", "/renders/00.json"):
            response = stranger.get(path)
            assert response.status_code == 302, path
            assert response.headers["location"].startswith("/login"), path
        refused = stranger.post("/recipes/render", data={"name": "x", "effect1": "glitch"})
        assert refused.status_code == 401
    no_token = browser.post("/recipes/render", data={"name": "x", "effect1": "glitch"})
    assert no_token.status_code == 403
    assert browser.get("/renders/0123456789abcdef").status_code == 404


def test_a_render_that_fails_in_ffmpeg_ends_failed_with_its_reason(
    browser: httpx.Client, clip: str
) -> None:
    # Valid for the recipe checks, impossible for the 160x90 clip: it fails while rendering.
    started = _compose(browser, clip, effect1="crop", params1="width=4000, height=4000")
    assert started.status_code == 303, started.text
    where = started.headers["location"]
    deadline = time.monotonic() + RENDER_DEADLINE_S
    while (state := browser.get(f"{where}.json").json())["state"] == "running":
        assert time.monotonic() < deadline, f"render not over in {RENDER_DEADLINE_S}s: {state}"
        time.sleep(0.2)
    assert state["state"] == "failed" and "does not fit in the 160x90 picture" in state["message"]
    assert "output" not in state
    page = browser.get(where).text
    assert 'data-render-state="failed"' in page and "data-poll" not in page
