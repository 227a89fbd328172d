"""The settings page: ``/settings`` shows the volunteer capacity policy as a form (written to
config.toml by ``POST /settings/volunteer``; the daemon reads it at its next start), the pins
(``POST /settings/pin`` and ``/settings/unpin``) and the fediverse domain blocks (changed on
the fediverse page's forms, which return here when posted from here).

The form's text is turned into typed values here (:func:`policy_values`: a clear message for
text that is not a number); the ranges are the daemon's to check (its ConfigError message,
naming the key, is shown as it is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quart import Blueprint, Response, redirect, url_for
from werkzeug.datastructures import MultiDict

from dag import CidError, DagError

from .page_common import checked_form, login_required, notice, page
from .services import Row, WebServices

__all__ = ["POLICY_FIELDS", "PolicyField", "policy_values", "register"]


@dataclass(frozen=True)
class PolicyField:
    key: str  # the [volunteer] key in config.toml
    kind: str  # bool | int | float | list
    label: str
    help: str


POLICY_FIELDS = (
    PolicyField("enabled", "bool", "Volunteer", "render steps of other creators' jobs"),
    PolicyField("max_jobs", "int", "Jobs at once", "at most this many steps at a time"),
    PolicyField("niceness", "int", "Niceness", "0..19: how politely renders yield the CPU"),
    PolicyField("cpu_share", "float", "CPU share", "fraction of the CPUs, 0 < x <= 1"),
    PolicyField("hours", "list", "Hours", "local time windows like 22:00-07:00; empty: any time"),
    PolicyField("idle_load", "float", "Idle load", "only when the load average is below (0: off)"),
    PolicyField(
        "allowed_effects", "list", "Allowed effects", "effect names; empty: every built-in"
    ),
    PolicyField("max_input_bytes", "int", "Max input bytes", "largest input fetched for a step"),
    PolicyField("max_input_seconds", "float", "Max input seconds", "longest input duration"),
)


def policy_values(form: MultiDict[str, str]) -> Row:
    """The policy form as typed ``[volunteer]`` values; ValueError naming a bad field. A
    field the form lacks is left as it is, except the checkbox (absent means off)."""
    values: Row = {}
    for field in POLICY_FIELDS:
        if field.kind != "bool" and field.key not in form:
            continue
        text = (form.get(field.key) or "").strip()
        if field.kind == "bool":
            values[field.key] = text.lower() in ("on", "true", "1", "yes")
        elif field.kind == "list":
            values[field.key] = [part.strip() for part in text.split(",") if part.strip()]
        elif field.kind == "int":
            try:
                values[field.key] = int(text)
            except ValueError:
                raise ValueError(f"{field.key}: expected a whole number, got {text!r}") from None
        else:
            try:
                values[field.key] = float(text)
            except ValueError:
                raise ValueError(f"{field.key}: expected a number, got {text!r}") from None
    return values


def _shown(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return value


def register(bp: Blueprint, services: WebServices) -> None:
    @bp.get("/settings")
    @login_required
    async def settings() -> Response:
        policy = {k: _shown(v) for k, v in services.volunteer_policy.current().items()}
        pins = await services.pins.list()
        pinning = await services.pins.policy()
        fediverse = services.fediverse
        bridge = await fediverse.followers() if fediverse is not None else None
        return await page(
            "settings.html",
            title="Settings",
            policy=policy,
            fields=POLICY_FIELDS,
            pins=pins,
            pinning=pinning,
            bridge=bridge,
        )

    @bp.post("/settings/volunteer")
    @login_required
    async def settings_volunteer() -> Any:
        form = await checked_form()
        try:
            await services.volunteer_policy.save(policy_values(form))
        except ValueError as exc:  # ConfigError is a ValueError
            notice(f"Not saved: {exc}")
        else:
            notice("Saved the volunteer policy to config.toml: it takes effect at the next start.")
        return redirect(url_for("webui.settings"), 303)

    async def change_pin(pin: bool) -> Any:
        form = await checked_form()
        cid = (form.get("cid") or "").strip()
        action = services.pins.add if pin else services.pins.remove
        if not cid:
            notice("Give a CID.")
        else:
            try:
                await action(cid)
            except (CidError, ValueError, DagError) as exc:
                notice(f"Not {'pinned' if pin else 'unpinned'}: {exc}")
            else:
                notice(f"{'Pinned' if pin else 'Unpinned'} {cid}.")
        return redirect(url_for("webui.settings") + "#pins", 303)

    @bp.post("/settings/gc")
    @login_required
    async def settings_gc() -> Any:
        await checked_form()
        try:
            report = await services.pins.collect()
        except DagError as exc:
            notice(f"Not collected: {exc}")
        else:
            notice(
                f"Removed {report['removed']} blocks, freed {report['freed']} "
                f"in {report['seconds']:.1f} s."
            )
        return redirect(url_for("webui.settings") + "#pinning", 303)

    @bp.post("/settings/pin")
    @login_required
    async def settings_pin() -> Any:
        return await change_pin(True)

    @bp.post("/settings/unpin")
    @login_required
    async def settings_unpin() -> Any:
        return await change_pin(False)
