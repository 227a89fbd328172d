"""The volunteer's capacity policy (renderer.market.policy) and the [volunteer] and [market]
sections of the configuration (daemon.config): pure rules, no network, no processes."""

from __future__ import annotations

import os
from datetime import time
from pathlib import Path

import pytest

from daemon.config import ENVIRONMENT, Config, ConfigError, load_config
from renderer import BUILTIN_EFFECTS
from renderer.market import (
    JobFacts,
    PolicyError,
    VolunteerPolicy,
    machine_load_per_cpu,
    refuse_job,
    refuse_now,
)

NOON = time(12, 0)


def idle(policy: VolunteerPolicy, now: time = NOON) -> str | None:
    """``refuse_now`` on an idle 4-CPU machine running nothing."""
    return refuse_now(policy, now=now, load_per_cpu=0.0, busy=0, ncpu=4)


def facts(operation: str = "resize", size: int = 1000, seconds: float = 2.0) -> JobFacts:
    return JobFacts(operation=operation, input_bytes=size, input_seconds=seconds)


# ---- static rules --------------------------------------------------------------------------


def test_the_default_policy_takes_a_small_job_of_any_builtin_effect() -> None:
    policy = VolunteerPolicy()
    for name in BUILTIN_EFFECTS:
        assert refuse_job(policy, facts(name)) is None
    assert idle(policy) is None


def test_an_effect_outside_allowed_effects_is_refused_naming_it() -> None:
    policy = VolunteerPolicy(allowed_effects=frozenset({"resize", "crop"}))
    assert refuse_job(policy, facts("crop")) is None
    reason = refuse_job(policy, facts("glitch"))
    assert reason == (
        "effect 'glitch' is not allowed by this volunteer's policy (allowed: crop, resize)"
    )
    assert "'nope'" in (refuse_job(VolunteerPolicy(), facts("nope")) or "")


def test_allowed_effects_must_be_known_builtins() -> None:
    with pytest.raises(PolicyError, match=r"'allowed_effects'.*'glitchy'") as info:
        VolunteerPolicy(allowed_effects=frozenset({"resize", "glitchy"}))
    assert info.value.key == "allowed_effects"
    with pytest.raises(PolicyError, match="'allowed_effects'"):
        VolunteerPolicy(allowed_effects=frozenset())


def test_inputs_too_big_or_too_long_are_refused() -> None:
    policy = VolunteerPolicy(max_input_bytes=10_000, max_input_seconds=30.0)
    assert refuse_job(policy, facts(size=10_000, seconds=30.0)) is None
    assert "max_input_bytes=10000" in (refuse_job(policy, facts(size=10_001)) or "")
    assert "max_input_seconds=30" in (refuse_job(policy, facts(seconds=30.5)) or "")
    assert refuse_job(policy, facts(seconds=0.0)) is None  # unknown duration


# ---- dynamic rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "now", "ok"),
    [
        (("09:00-17:00",), time(9, 0), True),
        (("09:00-17:00",), time(16, 59), True),
        (("09:00-17:00",), time(17, 0), False),
        (("09:00-17:00",), time(8, 59), False),
        (("22:00-06:00",), time(23, 30), True),
        (("22:00-06:00",), time(0, 0), True),
        (("22:00-06:00",), time(5, 59), True),
        (("22:00-06:00",), time(6, 0), False),
        (("22:00-06:00",), time(12, 0), False),
        (("22:00-06:00",), time(21, 59), False),
        (("00:00-24:00",), time(23, 59), True),
        (("12:00-13:00", "22:00-06:00"), time(12, 30), True),
        (("12:00-13:00", "22:00-06:00"), time(3, 0), True),
        (("12:00-13:00", "22:00-06:00"), time(14, 0), False),
        ((), time(3, 0), True),
    ],
)
def test_allowed_hours_including_windows_across_midnight(
    hours: tuple[str, ...], now: time, ok: bool
) -> None:
    reason = idle(VolunteerPolicy(hours=hours), now)
    if ok:
        assert reason is None
    else:
        assert reason is not None and reason.startswith("outside this volunteer's hours")


@pytest.mark.parametrize(
    "window", ["9:00-17:00", "09:00-17:60", "24:00-01:00", "09:00-24:01", "10:00-10:00", "x"]
)
def test_bad_hours_are_refused(window: str) -> None:
    with pytest.raises(PolicyError, match="'hours'"):
        VolunteerPolicy(hours=(window,))


def test_a_busy_machine_takes_no_job_and_zero_disables_the_check() -> None:
    policy = VolunteerPolicy(idle_load=0.5)
    assert refuse_now(policy, now=NOON, load_per_cpu=0.49, busy=0, ncpu=4) is None
    reason = refuse_now(policy, now=NOON, load_per_cpu=0.5, busy=0, ncpu=4)
    assert reason is not None and reason.startswith("machine not idle")
    off = VolunteerPolicy(idle_load=0)
    assert refuse_now(off, now=NOON, load_per_cpu=50.0, busy=0, ncpu=4) is None


def test_capacity_is_max_jobs_bounded_by_the_cpu_share() -> None:
    policy = VolunteerPolicy(max_jobs=3, cpu_share=0.5)
    assert [policy.concurrency(n) for n in (1, 2, 4, 6, 8, 64)] == [1, 1, 2, 3, 3, 3]
    assert VolunteerPolicy(max_jobs=8, cpu_share=1.0).concurrency(2) == 2
    assert refuse_now(policy, now=NOON, load_per_cpu=0.0, busy=1, ncpu=4) is None
    reason = refuse_now(policy, now=NOON, load_per_cpu=0.0, busy=2, ncpu=4)
    assert reason == "at capacity (2 of 2 jobs running)"


def test_machine_load_per_cpu_is_the_load_average_over_the_cpus() -> None:
    load = machine_load_per_cpu()
    assert load >= 0
    assert abs(load - os.getloadavg()[0] / (os.cpu_count() or 1)) < 1.0


# ---- policy from a mapping ------------------------------------------------------------------


def test_from_mapping_round_trips() -> None:
    policy = VolunteerPolicy.from_mapping(
        {
            "max_jobs": 2,
            "niceness": 5,
            "cpu_share": 1,
            "hours": ["22:00-06:00"],
            "idle_load": 0,
            "allowed_effects": ["resize", "crop"],
            "max_input_bytes": 1 << 20,
            "max_input_seconds": 60,
        }
    )
    assert policy.cpu_share == 1.0 and isinstance(policy.cpu_share, float)
    assert policy.allowed_effects == frozenset({"resize", "crop"})
    assert policy.hours == ("22:00-06:00",)
    assert VolunteerPolicy.from_mapping(policy.to_mapping()) == policy
    assert VolunteerPolicy.from_mapping(VolunteerPolicy().to_mapping()) == VolunteerPolicy()
    assert VolunteerPolicy.from_mapping({"allowed_effects": []}).allowed_effects is None


@pytest.mark.parametrize(
    ("mapping", "key"),
    [
        ({"max_jobz": 1}, "max_jobz"),
        ({"max_jobs": "2"}, "max_jobs"),
        ({"max_jobs": True}, "max_jobs"),
        ({"max_jobs": 0}, "max_jobs"),
        ({"max_jobs": 65}, "max_jobs"),
        ({"niceness": 20}, "niceness"),
        ({"niceness": 1.5}, "niceness"),
        ({"cpu_share": 0}, "cpu_share"),
        ({"cpu_share": 1.5}, "cpu_share"),
        ({"hours": "22:00-06:00"}, "hours"),
        ({"idle_load": -1}, "idle_load"),
        ({"idle_load": float("nan")}, "idle_load"),
        ({"allowed_effects": ["resize", 3]}, "allowed_effects"),
        ({"allowed_effects": ["nope"]}, "allowed_effects"),
        ({"max_input_bytes": 0}, "max_input_bytes"),
        ({"max_input_seconds": -1}, "max_input_seconds"),
    ],
)
def test_from_mapping_errors_name_the_key(mapping: dict[str, object], key: str) -> None:
    with pytest.raises(PolicyError, match=f"'{key}'") as info:
        VolunteerPolicy.from_mapping(mapping)
    assert info.value.key == key


# ---- configuration ------------------------------------------------------------------------


def _write(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


def test_config_defaults_and_toml_sections(tmp_path: Path) -> None:
    config = load_config(tmp_path / "none", environ={})
    assert config.volunteer.enabled is False and config.volunteer.policy() == VolunteerPolicy()
    market = config.market
    assert (market.replicas, market.lease_seconds, market.heartbeat_seconds) == (1, 20, 5)
    home = tmp_path / "home"
    _write(
        home,
        "[volunteer]\nenabled = true\nmax_jobs = 2\nniceness = 15\ncpu_share = 1\n"
        'hours = ["22:00-06:00"]\nallowed_effects = ["resize"]\nmax_input_seconds = 90\n'
        "[market]\nreplicas = 3\nlease_seconds = 8\nheartbeat_seconds = 2.5\n"
        "deadline_seconds = 600\noffer_wait_seconds = 10\nadaptive = false\n"
        "trust_after = 4\nspot_check = 0.25\n",
    )
    config = load_config(home, environ={})
    assert config.volunteer.enabled is True
    assert config.volunteer.policy() == VolunteerPolicy(
        max_jobs=2,
        niceness=15,
        cpu_share=1.0,
        hours=("22:00-06:00",),
        allowed_effects=frozenset({"resize"}),
        max_input_seconds=90.0,
    )
    assert config.market.replicas == 3 and config.market.lease_seconds == 8.0
    assert config.market.heartbeat_seconds == 2.5 and config.market.deadline_seconds == 600.0
    assert config.market.offer_wait_seconds == 10.0 and config.market.adaptive is False
    assert config.market.trust_after == 4 and config.market.spot_check == 0.25


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _write(home, "[volunteer]\nidle_load = 0.5\n[market]\nlease_seconds = 30\n")
    environ = {
        "ARTDAG_VOLUNTEER": "yes",
        "ARTDAG_IDLE_LOAD": "0",
        "ARTDAG_ALLOWED_EFFECTS": "resize, crop",
        "ARTDAG_LEASE_SECONDS": "4",
        "ARTDAG_HEARTBEAT_SECONDS": "1.5",
        "ARTDAG_OFFER_WAIT_SECONDS": "3",
    }
    config = load_config(home, environ=environ)
    assert config.volunteer.enabled is True and config.volunteer.idle_load == 0.0
    assert config.volunteer.policy().allowed_effects == frozenset({"resize", "crop"})
    market = config.market
    assert (market.lease_seconds, market.heartbeat_seconds, market.offer_wait_seconds) == (
        4.0,
        1.5,
        3.0,
    )
    assert set(environ) <= set(ENVIRONMENT)


@pytest.mark.parametrize(
    ("toml", "environ", "named"),
    [
        ("[volunteer]\nmax_jobs = 0\n", {}, "[volunteer] max_jobs: expected 1..64"),
        ("[volunteer]\nniceness = 25\n", {}, "[volunteer] niceness"),
        ('[volunteer]\nhours = ["9-5"]\n', {}, "[volunteer] hours"),
        ("[volunteer]\ncpu_share = 2\n", {}, "[volunteer] cpu_share"),
        ("[volunteer]\ncpu_share = 'half'\n", {}, "[volunteer] cpu_share: expected a number"),
        ("[volunteer]\nmax_jobs = 1.5\n", {}, "[volunteer] max_jobs: expected an integer"),
        ("[volunteer]\nbogus = 1\n", {}, "unknown key 'bogus' in [volunteer]"),
        ("", {"ARTDAG_ALLOWED_EFFECTS": "resize,glitchy"}, "ARTDAG_ALLOWED_EFFECTS"),
        ("", {"ARTDAG_IDLE_LOAD": "idle"}, "ARTDAG_IDLE_LOAD: expected a number"),
        ("", {"ARTDAG_IDLE_LOAD": "inf"}, "ARTDAG_IDLE_LOAD: expected a finite number"),
        ("", {"ARTDAG_VOLUNTEER": "maybe"}, "ARTDAG_VOLUNTEER"),
        ("[market]\nreplicas = 10\n", {}, "[market] replicas: expected 1..9"),
        ("[market]\nlease_seconds = 1\n", {}, "[market] lease_seconds"),
        ("", {"ARTDAG_HEARTBEAT_SECONDS": "10"}, "ARTDAG_HEARTBEAT_SECONDS: expected"),
        ("[market]\nheartbeat_seconds = 0\n", {}, "[market] heartbeat_seconds"),
        ("[market]\ndeadline_seconds = 0\n", {}, "[market] deadline_seconds"),
        ("", {"ARTDAG_OFFER_WAIT_SECONDS": "-1"}, "ARTDAG_OFFER_WAIT_SECONDS"),
        ("[market]\ntrust_after = 0\n", {}, "[market] trust_after"),
        ("[market]\nspot_check = 1.5\n", {}, "[market] spot_check"),
        ("[market]\nadaptive = 3\n", {}, "[market] adaptive: expected true or false"),
    ],
)
def test_bad_values_name_the_key(
    tmp_path: Path, toml: str, environ: dict[str, str], named: str
) -> None:
    home = tmp_path / "home"
    _write(home, toml)
    with pytest.raises(ConfigError) as info:
        load_config(home, environ=environ)
    assert named in str(info.value)


def test_the_defaults_written_by_init_load_back(tmp_path: Path) -> None:
    """``artdag init`` writes ``Config().to_toml()`` with tomli_w; it must hold no None and
    read back as the same configuration."""
    import tomli_w

    home = tmp_path / "home"
    _write(home, tomli_w.dumps(Config(home=home).to_toml()))
    assert load_config(home, environ={}) == Config(home=home)
