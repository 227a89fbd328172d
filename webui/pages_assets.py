"""The assets pages: ``/assets`` (the owner's list and the upload form), ``POST /assets`` (an
upload, streamed into the store), ``/assets/<cid>`` (a work: public, with its player, claims
and anchors) and ``POST /assets/<cid>/publish`` (a post to the creator's fediverse followers).

The upload reads the multipart body through Quart's form parser, which spools a file part to
a temporary file past 500 KiB (never the whole file in memory); the file is then fed to the
store in 1 MiB pieces read off that spool in a worker thread.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from typing import IO, Any, ParamSpec

import trio
from quart import Blueprint, Response, redirect, request, url_for
from werkzeug.datastructures import FileStorage

from dag import CidError, DagError, cid_to_str, parse_cid

from .page_common import checked_form, logged_in, login_required, notice, page
from .services import Row, WebServices

__all__ = ["human_size", "media_kind", "parse_tags", "register"]

PAGE_SIZE = 50
READ_SIZE = 1 << 20
P = ParamSpec("P")
_GENERIC_TYPES = ("", "application/octet-stream", "application/x-www-form-urlencoded")


def human_size(size: int | None) -> str:
    """``1536`` -> ``1.5 KiB`` (binary units; whole bytes below 1 KiB)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover (the loop always returns)


def media_kind(mime: str | None) -> str:
    """Which player shows a MIME type: ``video``, ``audio``, ``image`` or ``file``."""
    kind = (mime or "").split("/", 1)[0]
    return kind if kind in ("video", "audio", "image") else "file"


def parse_tags(text: str | None) -> list[str]:
    """Comma-separated tags, stripped, empty ones dropped, duplicates once (in order)."""
    tags: list[str] = []
    for part in (text or "").split(","):
        tag = part.strip()
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def upload_mime(part: FileStorage, name: str) -> str | None:
    """The part's Content-Type unless it is generic, else a guess from the file name."""
    given = (part.mimetype or "").strip().lower()
    if given and given not in _GENERIC_TYPES:
        return given
    return mimetypes.guess_type(name)[0]


async def _chunks(stream: IO[bytes]) -> AsyncIterator[bytes]:
    while True:
        piece = await trio.to_thread.run_sync(stream.read, READ_SIZE)
        if not piece:
            return
        yield piece


def _canonical(cid: str) -> str | None:
    try:
        return cid_to_str(parse_cid(cid))
    except CidError:
        return None


async def refuse(status: int, title: str, message: str) -> Response:
    return await page("error.html", status=status, title=title, message=message)


def register(bp: Blueprint, services: WebServices) -> None:
    _register_list(bp, services)
    _register_work(bp, services)


def _register_list(bp: Blueprint, services: WebServices) -> None:
    """The owner's list and the upload."""

    @bp.get("/assets")
    @login_required
    async def assets() -> Response:
        tag = (request.args.get("tag") or "").strip() or None
        try:
            number = max(1, int(request.args.get("page", "1")))
        except ValueError:
            number = 1
        rows = await services.assets.list(tag, PAGE_SIZE + 1, (number - 1) * PAGE_SIZE)
        more = len(rows) > PAGE_SIZE
        for row in rows:
            row["size_human"] = human_size(row.get("size"))
        return await page(
            "assets.html",
            title="Assets",
            assets=rows[:PAGE_SIZE],
            tag=tag,
            page_number=number,
            previous_page=number - 1 if number > 1 else None,
            next_page=number + 1 if more else None,
        )

    @bp.post("/assets")
    @login_required
    async def upload() -> Any:
        form = await checked_form()
        files = await request.files
        part = files.get("file")
        if part is None or not part.filename:
            return await refuse(400, "Upload refused", "Choose a file to upload.")
        name = (form.get("name") or "").strip() or part.filename.strip()
        if not name:
            return await refuse(400, "Upload refused", "The file needs a name.")
        try:
            row = await services.assets.add(
                _chunks(part.stream), name, parse_tags(form.get("tags")), upload_mime(part, name)
            )
        except (ValueError, DagError) as exc:
            return await refuse(400, "Upload refused", f"Not added: {exc}")
        finally:
            part.close()
        if row.get("existed"):
            notice(f"{row['name']} was already stored.")
        else:
            notice(f"Added {row['name']} ({human_size(row.get('size'))}).")
        return redirect(url_for("webui.asset_detail", cid=row["cid"]), 303)


def _register_work(bp: Blueprint, services: WebServices) -> None:
    """A work's public page and its publishing to the fediverse."""

    @bp.get("/assets/<cid>")
    async def asset_detail(cid: str) -> Response:
        text = _canonical(cid)
        if text is None:
            return await refuse(400, "Bad CID", f"{cid!r} is not a CID.")
        row = await services.assets.get(text)
        if row is None:
            return await refuse(404, "Not found", f"This node has no asset {text}.")
        claims: list[Row] | None = None
        anchors: list[Row] | None = None
        if services.ownership is not None:
            claims = await services.ownership.claims_of(text)
            anchors = await services.ownership.anchors_of(text)
        return await page(
            "asset.html",
            title=row["name"],
            asset=row,
            size_human=human_size(row.get("size")),
            kind=media_kind(row.get("mime")),
            claims=claims,
            anchors=anchors,
            can_publish=logged_in() and services.fediverse is not None,
            bridge_off=services.fediverse is None,
        )

    @bp.post("/assets/<cid>/publish")
    @login_required
    async def asset_publish(cid: str) -> Any:
        form = await checked_form()
        text = _canonical(cid)
        if text is None:
            return await refuse(400, "Bad CID", f"{cid!r} is not a CID.")
        if services.fediverse is None:
            notice("Not published: the fediverse bridge is off on this node.")
        else:
            alt = (form.get("alt") or "").strip() or None
            try:
                result = await services.fediverse.publish(
                    text, (form.get("text") or "").strip(), alt
                )
            except (ValueError, DagError) as exc:
                notice(f"Not published: {exc}")
            else:
                if result.get("already_published"):
                    notice(f"Already published as {result.get('note')}.")
                else:
                    queued = int(result.get("queued") or 0)
                    followers = "1 follower inbox" if queued == 1 else f"{queued} follower inboxes"
                    notice(f"Published as {result.get('note')}: queued to {followers}.")
        return redirect(url_for("webui.asset_detail", cid=text), 303)
