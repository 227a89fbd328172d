"""The web UI's assets, fediverse and settings pages (webui/pages_assets.py,
pages_fediverse.py, pages_settings.py), driven over HTTP against one real ``artdag daemon``
(P2P off, the fediverse bridge on with no followers), with an httpx client holding the session
cookie like a browser would: login, CSRF, the multipart upload of a real ffmpeg-made video, the
public detail page, publishing, the volunteer policy written to config.toml, pins and domain
blocks.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.daemons import DaemonProcess
from tests.harness.media import make_video
from tests.harness.web_daemons import csrf_of, log_in_client
from webui.pages_assets import human_size, media_kind, parse_tags
from webui.pages_settings import policy_values

pytestmark = pytest.mark.daemon


def _client(daemon: DaemonProcess) -> httpx.Client:
    return httpx.Client(base_url=daemon.api_url, timeout=60, follow_redirects=False)


def _notice(page: str) -> str:
    found = re.search(r'<p class="notice" role="status">(.*?)</p>', page, re.S)
    return html.unescape(found.group(1)) if found else ""


@pytest.fixture(scope="module")
def owner(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    """A client logged in as the owner (its cookie jar holds the session)."""
    client = _client(daemon)
    r = log_in_client(client, next_path="/assets")
    assert r.status_code in (302, 303) and r.headers["location"] == "/assets", r.text
    yield client
    client.close()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("media") / "clip.webm", seconds=1, container="webm")


def _upload(client: httpx.Client, path: Path, csrf: str | None, tags: str = "") -> httpx.Response:
    data = {"tags": tags} | ({"csrf": csrf} if csrf is not None else {})
    with path.open("rb") as f:
        return client.post(
            "/assets", data=data, files={"file": (path.name, f, "application/octet-stream")}
        )


def _get(client: httpx.Client, url: str) -> str:
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return r.text


def test_helpers() -> None:
    assert human_size(512) == "512 B" and human_size(1536) == "1.5 KiB"
    assert human_size(5 << 20) == "5.0 MiB"
    assert media_kind("video/webm") == "video" and media_kind("application/pdf") == "file"
    assert parse_tags(" a, b,,a , c ") == ["a", "b", "c"]
    assert policy_values({"max_jobs": "2", "cpu_share": "0.5", "hours": "a, b"})["hours"] == [
        "a",
        "b",
    ]
    with pytest.raises(ValueError, match="max_jobs"):
        policy_values({"max_jobs": "lots"})


def test_login_is_needed(daemon: DaemonProcess, video: Path) -> None:
    with _client(daemon) as anonymous:
        r = anonymous.get("/assets")
        assert r.status_code == 302 and r.headers["location"].startswith("/login")
        for path in ("/fediverse", "/settings"):
            assert anonymous.get(path).status_code == 302
        assert _upload(anonymous, video, "whatever").status_code == 401
        assert anonymous.post("/settings/pin", data={"cid": "x"}).status_code == 401


def test_upload_list_detail(daemon: DaemonProcess, owner: httpx.Client, video: Path) -> None:
    listing = _get(owner, "/assets")
    assert "<form data-upload" in listing and 'name="file"' in listing
    before = daemon.api("GET", "/api/v1/assets").json()["assets"]

    refused = _upload(owner, video, None)  # no CSRF field
    assert refused.status_code == 403
    assert daemon.api("GET", "/api/v1/assets").json()["assets"] == before

    r = _upload(owner, video, csrf_of(listing), tags="test, <b>clip</b>")
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    cid = location.rsplit("/", 1)[1]
    assert location == f"/assets/{cid}"

    detail = _get(owner, location)
    assert f'<video controls preload="metadata" src="/ipfs/{cid}">' in detail
    assert "Added clip.webm" in _notice(detail)
    assert "video/webm" in detail  # guessed from the name (the part said octet-stream)
    assert "&lt;b&gt;clip&lt;/b&gt;" in detail and "<b>clip</b>" not in detail
    assert f'href="/provenance/{cid}"' in detail and f"/ipfs/{cid}?format=car" in detail
    assert 'action="/assets/' in detail and "/publish" in detail  # the owner may publish

    listed = _get(owner, "/assets")
    assert f'data-cid="{cid}"' in listed and "clip.webm" in listed
    assert f'data-cid="{cid}"' in _get(owner, "/assets?tag=test")
    assert f'data-cid="{cid}"' not in _get(owner, "/assets?tag=other")

    with _client(daemon) as anonymous:  # the work's page is public, without editing controls
        public = _get(anonymous, location)
        assert f'src="/ipfs/{cid}"' in public and "/publish" not in public
        assert anonymous.post(f"/assets/{cid}/publish", data={}).status_code == 401
        assert anonymous.get("/assets/not-a-cid").status_code == 400
        unknown = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
        assert anonymous.get(f"/assets/{unknown}").status_code == 404
        provenance = _get(anonymous, f"/provenance/{cid}")
        assert f'src="/ipfs/{cid}"' in provenance and "clip.webm" in provenance
        as_json = anonymous.get(f"/provenance/{cid}?format=json").json()
        assert as_json["cid"] == cid and as_json["asset"]["name"] == "clip.webm"

    # publishing with no followers: a notice saying nothing was queued
    r = owner.post(f"/assets/{cid}/publish", data={"csrf": csrf_of(detail), "text": "new work"})
    assert r.status_code == 303 and r.headers["location"] == location
    said = _notice(_get(owner, location))
    assert "Published" in said and "queued to 0 follower inboxes" in said


def test_empty_upload_is_refused(owner: httpx.Client) -> None:
    token = csrf_of(_get(owner, "/assets"))
    r = owner.post("/assets", data={"csrf": token}, files={"file": ("", b"", "text/plain")})
    assert r.status_code == 400 and "Choose a file" in r.text


def test_volunteer_policy(daemon: DaemonProcess, owner: httpx.Client) -> None:
    config = daemon.home / "config.toml"
    page = _get(owner, "/settings")
    token = csrf_of(page)
    form = {
        "csrf": token,
        "max_jobs": "1",
        "niceness": "10",
        "cpu_share": "0.5",
        "hours": "",
        "idle_load": "0.8",
        "allowed_effects": "",
        "max_input_bytes": str(2 << 30),
        "max_input_seconds": "600",
    }
    before = config.read_bytes() if config.exists() else None
    for bad, message in (("lots", "expected a whole number"), ("0", "[volunteer] max_jobs")):
        r = owner.post("/settings/volunteer", data=form | {"max_jobs": bad})
        assert r.status_code == 303
        said = _notice(_get(owner, "/settings"))
        assert said.startswith("Not saved") and message in said, said
        assert (config.read_bytes() if config.exists() else None) == before

    r = owner.post("/settings/volunteer", data=form | {"max_jobs": "3", "enabled": "on"})
    assert r.status_code == 303
    page = _get(owner, "/settings")
    assert "next start" in _notice(page)
    assert 'name="max_jobs" value="3"' in page
    text = config.read_text()
    assert "max_jobs = 3" in text and "enabled = true" in text


def test_pins(daemon: DaemonProcess, owner: httpx.Client) -> None:
    cid = daemon.add_bytes(b"pin me", "pin.txt")["cid"]
    token = csrf_of(_get(owner, "/settings"))
    assert f'data-pin="{cid}"' in _get(owner, "/settings")  # added assets are pinned
    assert owner.post("/settings/unpin", data={"csrf": token, "cid": cid}).status_code == 303
    page = _get(owner, "/settings")
    assert f"Unpinned {cid}" in _notice(page) and f'data-pin="{cid}"' not in page
    owner.post("/settings/unpin", data={"csrf": token, "cid": cid})
    assert "is not pinned" in _notice(_get(owner, "/settings"))
    assert owner.post("/settings/pin", data={"csrf": token, "cid": cid}).status_code == 303
    page = _get(owner, "/settings")
    assert f"Pinned {cid}" in _notice(page) and f'data-pin="{cid}"' in page
    row = page.split(f'data-pin="{cid}"')[1].split("</tr>")[0]
    assert '<td class="reasons">explicit' in row  # pinned from the web: the operator's pin
    owner.post("/settings/pin", data={"csrf": token, "cid": "nonsense"})
    assert _notice(_get(owner, "/settings")).startswith("Not pinned")


def test_pinning_policies_and_gc_from_settings(daemon: DaemonProcess, owner: httpx.Client) -> None:
    page = _get(owner, "/settings")
    assert 'id="pinning"' in page and "Followed creators" in page
    token = csrf_of(page)
    assert owner.post("/settings/gc", data={"csrf": token}).status_code == 303
    page = _get(owner, "/settings")
    assert _notice(page).startswith("Removed ") and " freed " in _notice(page)
    assert "Last garbage collection" in page and "not since the daemon started" not in page
    assert owner.post("/settings/gc", data={}).status_code == 403  # no CSRF token


def test_domain_blocks(owner: httpx.Client) -> None:
    page = _get(owner, "/fediverse")
    assert "@creator@" in page and "No followers yet" in page
    token = csrf_of(page)
    r = owner.post("/fediverse/block", data={"csrf": token, "domain": "Spam.Example"})
    assert r.status_code == 303 and r.headers["location"] == "/fediverse"
    page = _get(owner, "/fediverse")
    assert "Blocked spam.example" in _notice(page) and 'data-blocked="spam.example"' in page
    r = owner.post(
        "/fediverse/block", data={"csrf": token, "domain": "bad..name", "back": "settings"}
    )
    assert r.headers["location"] == "/settings"
    assert _notice(_get(owner, "/settings")).startswith("Not blocked")
    assert 'data-blocked="spam.example"' in _get(owner, "/settings")
    owner.post("/fediverse/unblock", data={"csrf": token, "domain": "spam.example"})
    page = _get(owner, "/fediverse")
    assert "Unblocked spam.example" in _notice(page) and 'data-blocked="spam.example"' not in page
    assert _get(owner, "/fediverse?state=nonsense").count('role="alert"') == 1
