"""Issue 16, the web UI's login: the throttle behind a reverse proxy, the post-login redirect,
and logging out for real.

One real ``artdag daemon`` (P2P off) configured as the documented reverse-proxy setup
(``[gateway] trust_forwarded_for = true``), driven over HTTP by httpx clients holding the
session cookie as a browser would. The ``X-Forwarded-For`` values are documentation addresses
(RFC 5737) used only as header values: every request goes to 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.harness.daemons import DaemonProcess
from tests.harness.web_daemons import csrf_of, webui_daemon
from webui.pages import _safe_next

pytestmark = pytest.mark.daemon

PASSWORD = "the owner's password"
ATTACKER = "203.0.113.5"
COOKIE = "artdag_session"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    home = tmp_path_factory.mktemp("hardening-web") / "home"
    with webui_daemon(home, PASSWORD, config_toml="[gateway]\ntrust_forwarded_for = true\n") as d:
        yield d


def _client(daemon: DaemonProcess, **kwargs: object) -> httpx.Client:
    return httpx.Client(base_url=daemon.api_url, timeout=60, follow_redirects=False, **kwargs)  # type: ignore[arg-type]


def _log_in(
    client: httpx.Client, password: str, forwarded: str, next_path: str = "/"
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded}
    token = csrf_of(client.get("/login", headers=headers).text)
    return client.post(
        "/login",
        data={"password": password, "csrf": token, "next": next_path},
        headers=headers,
    )


# -- finding 3: the login throttle keys on the client, not on the proxy ---------------------------


def test_a_locked_out_address_does_not_lock_out_the_owner_behind_the_proxy(
    daemon: DaemonProcess,
) -> None:
    with _client(daemon) as attacker, _client(daemon) as owner:
        owner_headers = {"X-Forwarded-For": "198.51.100.7"}
        owner_token = csrf_of(owner.get("/login", headers=owner_headers).text)
        # Wrong passwords until the throttle makes this address wait at least 4 s (seven
        # failures); a 429 before that is waited out, so slow machines get there too.
        for _ in range(30):
            token = csrf_of(attacker.get("/login", headers={"X-Forwarded-For": ATTACKER}).text)
            r = attacker.post(
                "/login",
                data={"password": "wrong password", "csrf": token},
                headers={"X-Forwarded-For": ATTACKER},
            )
            if r.status_code == 429:
                retry = int(r.headers["Retry-After"])
                if retry >= 5:
                    break
                time.sleep(retry)
            else:
                assert r.status_code == 401, r.text
        else:
            pytest.fail("the throttle never locked the attacker out")
        # The owner, from another address through the same proxy, logs in at once.
        r = owner.post(
            "/login",
            data={"password": PASSWORD, "csrf": owner_token, "next": "/settings"},
            headers=owner_headers,
        )
        assert r.status_code == 302, (r.status_code, r.text[:300])
        assert r.headers["location"] == "/settings"
        assert owner.get("/settings").status_code == 200
        # The attacker's address stays locked, even with the right password.
        r = attacker.post(
            "/login",
            data={"password": PASSWORD, "csrf": token},
            headers={"X-Forwarded-For": ATTACKER},
        )
        assert r.status_code == 429


# -- finding 6a: the post-login redirect stays on this origin ------------------------------------

HOSTILE_NEXT = [
    "/\\evil.example/x",
    "//evil",
    "/%5Cevil",
    "/%2F/evil",
    "/%255Cevil",
    "https://evil",
    "\\\\evil",
    "/\t/evil",
    "/\n/evil",
    "javascript:alert(1)",
    " //evil",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_next_leaving_the_origin_is_refused(target: str) -> None:
    assert _safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/settings", "/assets?tag=a%20b", "/ipfs/x%2Fy", "/"])
def test_next_on_the_origin_is_kept(target: str) -> None:
    assert _safe_next(target) == target


def test_login_redirects_only_to_local_paths(daemon: DaemonProcess) -> None:
    for i, target in enumerate(["/\\evil.example/x", "/%5Cevil", "//evil", "/jobs"]):
        with _client(daemon) as browser:
            r = _log_in(browser, PASSWORD, f"198.51.100.{20 + i}", target)
            assert r.status_code == 302
            assert r.headers["location"] == (target if target == "/jobs" else "/"), target


# -- finding 6b: logging out ends the session on the server --------------------------------------


def _opens_settings(daemon: DaemonProcess, cookie: str) -> bool:
    with _client(daemon, cookies={COOKIE: cookie}) as replay:
        r = replay.get("/settings")
        assert r.status_code in (200, 302), r.status_code
        return r.status_code == 200


def _log_out(client: httpx.Client) -> None:
    token = csrf_of(client.get("/settings").text)
    r = client.post("/logout", data={"csrf": token})
    assert r.status_code == 302


def test_a_cookie_saved_before_logout_opens_nothing_after_it(daemon: DaemonProcess) -> None:
    with _client(daemon) as browser, _client(daemon) as other_browser:
        assert _log_in(browser, PASSWORD, "198.51.100.40").status_code == 302
        assert _log_in(other_browser, PASSWORD, "198.51.100.41").status_code == 302
        saved = browser.cookies[COOKIE]
        assert _opens_settings(daemon, saved)
        _log_out(browser)
        assert not _opens_settings(daemon, saved)
        # Only that session ended: the owner's other browser is still logged in.
        assert other_browser.get("/settings").status_code == 200


def test_sessions_survive_a_restart_and_a_logout_survives_it_too(daemon: DaemonProcess) -> None:
    with _client(daemon) as browser:
        assert _log_in(browser, PASSWORD, "198.51.100.50").status_code == 302
        kept = browser.cookies[COOKIE]
    with _client(daemon) as browser:
        assert _log_in(browser, PASSWORD, "198.51.100.51").status_code == 302
        ended = browser.cookies[COOKIE]
        _log_out(browser)
    daemon.stop()
    daemon.restart()
    assert _opens_settings(daemon, kept)
    assert not _opens_settings(daemon, ended)
    mode = (daemon.home / "web-sessions").stat().st_mode & 0o777
    assert mode == 0o600
