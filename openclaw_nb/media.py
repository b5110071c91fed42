"""Media upload, media messages and the typing indicator for both drivers: ``MediaMixin`` / ``AsyncMediaMixin``.

An upload reads its file twice and never holds it whole: one pass for size and MD5 (``getuploadurl`` needs
them up front), then a second that encrypts chunk by chunk while the CDN request streams out, with its
``Content-Length`` computed from the plaintext size. The decisions live in :mod:`.protocol.media`; the shared
flows below are generators that both drivers run, as everywhere in the client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union, cast

from . import errors as E
from .protocol import constants as C
from .protocol import models as m
from .protocol.crypto import CHUNK
from .protocol.flow import Flow
from .protocol.media import (
    MediaSendResp,
    TypingTicketCache,
    UploadedMedia,
    UploadPlan,
    digest,
    parse_kind,
    split_text,
)
from .protocol.text import TEXT_CHUNK_CHARS

if TYPE_CHECKING:
    from .client import BaseClient, Peer
    from .progress import Progress

    _Base = BaseClient
else:
    _Base = object

log = logging.getLogger("openclaw_nb")


def _keepalive_interval(value: object) -> float:
    """Seconds between typing keepalives (0: none), checked."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != value:
        raise E.UsageError(
            f"keepalive is the number of seconds between typing keepalives (default "
            f"{C.TYPING_KEEPALIVE_SECONDS:g}, as the official client), or None/0 to send status 1 only once; "
            f"got {value!r}"
        )
    return float(value)


def _keepalive_failed(user: str, exc: Exception) -> None:
    log.warning("typing keepalive for %s failed (the indicator may go out before the block ends): %s", user, exc)


#: What ``upload`` and the ``send_*`` methods accept: a path, bytes in memory, or a finished upload (send only).
Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]
#: The name a file item gets when the media comes from memory and no ``name`` is given.
DEFAULT_NAME = "file.bin"


# --- the plaintext: a file on disk or bytes in memory ---------------------------------------------


@dataclass(frozen=True)
class Plaintext:
    name: str
    path: str | None = None
    data: memoryview | None = None

    def chunks(self, expect: int | None = None) -> Iterator[memoryview]:
        """The plaintext in chunks of :data:`CHUNK` bytes, read into one reused buffer (each chunk is valid
        until the next is requested). With ``expect``, a file that changed size since hashing is an error
        raised before its last byte goes out."""
        total = 0
        if self.data is not None:
            for start in range(0, len(self.data), CHUNK):
                yield self.data[start : start + CHUNK]
            total = len(self.data)
        else:
            assert self.path is not None
            with open(self.path, "rb", buffering=0) as fh:
                buf = bytearray(CHUNK)
                view = memoryview(buf)
                while n := fh.readinto(buf):
                    total += n
                    if expect is not None and total > expect:
                        break
                    yield view[:n]
        if expect is not None and total != expect:
            raise E.UsageError(
                f"{self.name!r} changed while it was being uploaded ({expect:,} bytes hashed, "
                f"{'more' if total > expect else f'{total:,}'} read now); upload it again once it is complete"
            )


def plaintext_of(source: object, name: str | None) -> Plaintext:
    """Check the source before any request: a readable regular file, or bytes."""
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise E.UsageError(f"name must be a non-empty file name such as 'report.pdf', got {name!r}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        return Plaintext(name or DEFAULT_NAME, data=view)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not isinstance(path, str) or not path:
            raise E.UsageError(f"pass a file path (str or pathlib.Path) or bytes, got {source!r}")
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise E.UsageError(f"no such file: {path!r} (relative paths start at {os.getcwd()!r})") from None
        except OSError as exc:
            raise E.UsageError(f"cannot read {path!r}: {exc.strerror or exc}") from None
        if stat.S_ISDIR(info.st_mode):
            raise E.UsageError(f"{path!r} is a directory; pass one file (zip a folder to send it)")
        if not stat.S_ISREG(info.st_mode):
            raise E.UsageError(f"{path!r} is not a regular file; it must be read twice (hash, then upload)")
        try:
            open(path, "rb").close()
        except OSError as exc:
            raise E.UsageError(f"cannot read {path!r}: {exc.strerror or exc}") from None
        return Plaintext(name or os.path.basename(path), path=path)
    raise E.UsageError(f"pass a file path (str or pathlib.Path) or bytes, got {type(source).__name__}")


def _require_to(to: object) -> str:
    if not isinstance(to, str) or not to.strip():
        raise E.UsageError(
            f"to must be a non-empty user id string such as 'abc@im.wechat', got {to!r}; "
            "user ids come from message.from_user_id"
        )
    return to


def _kind(kind: object, name: str | None) -> C.UploadMediaType:
    try:
        return parse_kind(kind, name)  # type: ignore[arg-type]
    except ValueError as exc:
        raise E.UsageError(str(exc)) from None


def _prepare(source: object, to: object, kind: object, name: str | None) -> tuple[UploadPlan, Plaintext]:
    """Everything before the first request: checks, then size and MD5 in one pass over the plaintext."""
    user = _require_to(to)
    plain = plaintext_of(source, name)
    media_type = _kind(kind, plain.name)
    rawsize, md5 = digest(plain.chunks())
    return UploadPlan(user, media_type, rawsize, md5, plain.name), plain


# --- flows shared by both drivers -------------------------------------------------------------------


class _MediaFlows(_Base):
    """The media and typing flows (no I/O of their own); the drivers below run them."""

    @property
    def typing_tickets(self) -> TypingTicketCache:
        """Each user's ``typing_ticket`` and when to refresh it (created on first use)."""
        cache = self.__dict__.get("_typing_tickets")
        if cache is None:
            cache = self.__dict__["_typing_tickets"] = TypingTicketCache()
        return cast(TypingTicketCache, cache)

    def _upload_flow(self, plan: UploadPlan, plain: Plaintext, progress: Progress) -> Flow:
        resp = cast(m.GetUploadUrlResp, (yield from self._get_upload_url_flow(plan.request(), {})))
        if not resp.upload_full_url and not resp.upload_param:
            raise E.ProtocolError(
                "get_upload_url answered without upload_full_url or upload_param, so there is nowhere to upload",
                endpoint="get_upload_url",
            )

        def body() -> Iterator[bytes]:
            # Called again for each try, so a retry re-reads and re-encrypts from the start.
            progress.start(plan.filesize)
            for piece in plan.encrypt(plain.chunks(expect=plan.rawsize)):
                yield piece
                progress.advance(len(piece))

        param = yield from self._cdn_upload_flow(
            body, resp.upload_param, plan.filekey, resp.upload_full_url, content_length=plan.filesize
        )
        return plan.uploaded(cast(str, param))

    def _media_budget(
        self, to: str, caption: str | None, context_token: str | None
    ) -> tuple[Peer, str | None, list[str]]:
        """Check the reply budget for caption + media before uploading anything (an upload is expensive)."""
        if caption is not None and (not isinstance(caption, str) or not caption):
            raise E.UsageError(f"caption must be a non-empty str or None, got {caption!r}")
        parts = split_text(caption, C.MAX_TEXT_BYTES, TEXT_CHUNK_CHARS) if caption else []
        peer = self.peer(to)
        # As send_text: without a token this warns and sends anyway. docs/protocol.md lets a client send without
        # one (the official plugin only warns); a server that insists answers -2, explained by SendRejectedError.
        token = self._reply_token(peer, context_token)
        needed = len(parts) + 1
        what = f"the media and its caption need {needed} messages and" if parts else "the media needs 1 message and"
        self._sends_allowed(peer, token, needed, what)
        return peer, token, parts

    def _send_media_flow(
        self,
        uploaded: UploadedMedia,
        peer: Peer,
        token: str | None,
        caption: list[str],
        client_id: str | None,
        run_id: str | None = None,
    ) -> Flow:
        answers = []
        for part in caption:  # the official client sends the caption first, as its own text message
            answers.append((yield from self._send_item_flow(peer, m.MessageItem.text(part), token, None, run_id)))
        sent = yield from self._send_item_flow(peer, uploaded.message_item(), token, client_id, run_id)
        resp = MediaSendResp.from_wire(sent.to_wire())
        resp.raw, resp.client_id = sent.raw, sent.client_id
        resp.uploaded, resp.caption = uploaded, answers
        return resp

    def _typing_flow(self, user: str, cancel: bool, context_token: str | None) -> Flow:
        user = _require_to(user)
        cache = self.typing_tickets
        token = context_token or self.peer(user).context_token
        ticket = cache.ticket(user)
        if cache.due(user, token):
            try:
                resp = cast(m.GetConfigResp, (yield from self._get_config_flow(user, token)))
                if resp.ret != 0:
                    # Only an explicit ret 0 is a success for the official client; other codes raised above.
                    raise E.ProtocolError(
                        "get_config answered without ret = 0, which counts as a failure (as in the official client)",
                        endpoint="get_config",
                    )
            except E.RemoteError as exc:
                cache.failed(user, str(exc), token)
                if ticket is None:
                    raise
                log.info("get_config for %s failed (%s); using the cached typing ticket", user, exc)
            else:
                ticket = resp.typing_ticket or ""
                cache.succeeded(user, ticket)
                if not ticket:
                    log.info(
                        "get_config gave no typing_ticket for %s: the typing indicator is off for this user until "
                        "the ticket is refreshed (within 24 h), as in the official client",
                        user,
                    )
        elif ticket is None:
            entry = cache.entries[user]
            raise E.RemoteError(
                f"no typing ticket for {user}: get_config failed ({entry.last_error}); the next try is in "
                f"{cache.wait(user):.0f} s, or sooner once the user writes again",
                endpoint="get_config",
            )
        if not ticket:
            log.debug("typing for %s skipped: the server gave no typing_ticket", user)
            return None
        status = C.TypingStatus.CANCEL if cancel else C.TypingStatus.TYPING
        try:
            return (yield from self._send_typing_flow(user, ticket, status))
        except E.ApiError:
            cache.invalidate(user)  # the server refused the ticket: fetch a fresh one next time
            raise


def _check_run_id(run_id: object) -> None:
    if run_id is not None and (not isinstance(run_id, str) or not run_id):
        raise E.UsageError(
            f"run_id must be a non-empty string (one per reply, e.g. new_run_id()) or None, got {run_id!r}"
        )


def _media_kind(expected: C.UploadMediaType, source: object) -> C.UploadMediaType:
    if isinstance(source, UploadedMedia) and source.media_type != expected:
        raise E.UsageError(
            f"this upload is a {source.kind}; send it with send_{source.kind}() or send_media(), "
            f"or upload it again with kind={expected.name.lower()!r}"
        )
    return expected


def _progress(plan: UploadPlan, enabled: bool | None) -> Progress:
    """The upload's progress bar. By default only files above ``THRESHOLD`` (1 MiB) of plaintext get one, so
    the documented "files above 1 MiB" holds exactly (the ciphertext of a 1 MiB file is 16 bytes more)."""
    from .progress import THRESHOLD, NullProgress, make_progress

    if enabled is False or (enabled is None and plan.rawsize <= THRESHOLD):
        return NullProgress()
    return make_progress(plan.filesize, f"uploading {plan.file_name}", enabled)


# --- the sync driver --------------------------------------------------------------------------------


class MediaMixin(_MediaFlows):
    """Media and typing methods of :class:`~openclaw_nb.client.Client`."""

    if TYPE_CHECKING:

        def _run(self, flow: Flow) -> Any: ...

    def upload(
        self,
        path_or_bytes: Source,
        to: str,
        kind: str | None = None,
        *,
        name: str | None = None,
        progress: bool | None = None,
    ) -> UploadedMedia:
        """Encrypt and upload a file (or bytes) to the CDN for user ``to``; nothing is sent to the user yet.

        ``kind`` is ``"image"``, ``"video"`` or ``"file"`` (default: from the name's extension, by the official
        client's fixed table: ``protocol.media.EXTENSION_MIME``).
        Files above 1 MiB (1,048,576 bytes) show a progress bar (ipywidgets in Jupyter, rich on a terminal)
        unless ``progress=False``; ``progress=True`` shows one for any size.

        >>> media = client.upload("chart.png", to=user)
        >>> client.send_image(media, to=user)
        """
        plan, plain = _prepare(path_or_bytes, to, kind, name)
        bar = _progress(plan, progress)
        ok = False
        try:
            result = cast(UploadedMedia, self._run(self._upload_flow(plan, plain, bar)))
            ok = True
            return result
        finally:
            bar.close(ok)

    def _send_media(
        self,
        source: Source | UploadedMedia,
        to: str,
        kind: C.UploadMediaType | str | None,
        caption: str | None,
        context_token: str | None,
        client_id: str | None,
        name: str | None,
        progress: bool | None,
        run_id: str | None = None,
    ) -> MediaSendResp:
        user = _require_to(to)
        _check_run_id(run_id)
        peer, token, parts = self._media_budget(user, caption, context_token)
        if isinstance(source, UploadedMedia):
            uploaded = source
        else:
            uploaded = self.upload(source, user, kind, name=name, progress=progress)  # type: ignore[arg-type]
        flow = self._send_media_flow(uploaded, peer, token, parts, client_id, run_id)
        return cast(MediaSendResp, self._run(flow))

    def send_image(
        self,
        image: Source | UploadedMedia,
        to: str,
        caption: str | None = None,
        *,
        context_token: str | None = None,
        client_id: str | None = None,
        name: str | None = None,
        progress: bool | None = None,
        run_id: str | None = None,
    ) -> MediaSendResp:
        """Upload an image and send it (a caption goes first, as its own text message).

        >>> client.send_image("plot.png", user, caption="today's numbers")
        """
        kind = _media_kind(C.UploadMediaType.IMAGE, image)
        return self._send_media(image, to, kind, caption, context_token, client_id, name, progress, run_id)

    def send_file(
        self,
        file: Source | UploadedMedia,
        to: str,
        caption: str | None = None,
        *,
        context_token: str | None = None,
        client_id: str | None = None,
        name: str | None = None,
        progress: bool | None = None,
        run_id: str | None = None,
    ) -> MediaSendResp:
        """Upload a file and send it as a file message (shown with its name and size).

        >>> client.send_file("report.pdf", user)
        >>> client.send_file(b"a,b\\n1,2\\n", user, name="data.csv")
        """
        kind = _media_kind(C.UploadMediaType.FILE, file)
        return self._send_media(file, to, kind, caption, context_token, client_id, name, progress, run_id)

    def send_video(
        self,
        video: Source | UploadedMedia,
        to: str,
        caption: str | None = None,
        *,
        context_token: str | None = None,
        client_id: str | None = None,
        name: str | None = None,
        progress: bool | None = None,
        run_id: str | None = None,
    ) -> MediaSendResp:
        """Upload a video and send it as a video message."""
        kind = _media_kind(C.UploadMediaType.VIDEO, video)
        return self._send_media(video, to, kind, caption, context_token, client_id, name, progress, run_id)

    def send_media(
        self,
        path: Source | UploadedMedia,
        to: str,
        caption: str | None = None,
        *,
        kind: str | None = None,
        context_token: str | None = None,
        client_id: str | None = None,
        name: str | None = None,
        progress: bool | None = None,
        run_id: str | None = None,
    ) -> MediaSendResp:
        """Upload and send, choosing the message kind by the MIME type of the name's extension in the official
        client's fixed table: ``video/*`` → video, ``image/*`` → image, anything else (``.svg``, ``.heic``,
        an unknown extension) → file. ``kind=`` overrides it; ``run_id`` tags the caption and the media as one
        reply.

        >>> client.send_media("clip.mp4", user, caption="look")     # a video message after the caption
        """
        return self._send_media(path, to, kind, caption, context_token, client_id, name, progress, run_id)

    def typing(self, user: str, cancel: bool = False, *, context_token: str | None = None) -> m.SendTypingResp | None:
        """Show the typing indicator to ``user`` (or hide it with ``cancel=True``).

        The ``typing_ticket`` comes from ``getconfig`` and is cached per user (refreshed at a random time
        within 24 h; after a failure retried with back-off from 2 s to 1 h). A ``getconfig`` counts as a success
        only with ``ret`` 0; when it gives an empty ticket, typing is off for that user (nothing is sent and
        this returns None) until the next refresh, as in the official client.

        >>> client.typing(user); answer = slow_model(question); client.typing(user, cancel=True)
        """
        return cast("m.SendTypingResp | None", self._run(self._typing_flow(user, cancel, context_token)))

    @contextmanager
    def typing_indicator(
        self,
        user: str,
        *,
        context_token: str | None = None,
        keepalive: float | None = C.TYPING_KEEPALIVE_SECONDS,
    ) -> Iterator[None]:
        """Show "typing..." while the block runs; cancelled on the way out, also when the block raises.

        As the official client does while it produces a reply, status 1 is sent again every ``keepalive``
        seconds (5 by default; None or 0: only once) from a helper thread, which is stopped and joined before
        the cancel goes out: nothing is left running after the block. A failed keepalive is logged and the
        block goes on.

        If the indicator cannot be shown (no ticket: the user has not written yet), that error is raised and
        the block does not run. A failed cancel after a failed block is logged, so the block's error shows.

        >>> with client.typing_indicator(user):
        ...     answer = slow_model(question)
        """
        interval = _keepalive_interval(keepalive)
        shown = self.typing(user, context_token=context_token)
        failed = False
        stop = threading.Event()
        helper = None
        if interval and shown is not None:

            def keep_showing() -> None:
                while not stop.wait(interval):
                    try:
                        self.typing(user, context_token=context_token)
                    except Exception as exc:  # the block goes on; the next keepalive may succeed
                        _keepalive_failed(user, exc)

            helper = threading.Thread(target=keep_showing, name="openclaw-nb-typing", daemon=True)
            helper.start()
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            stop.set()
            if helper is not None:
                helper.join()
            try:
                self.typing(user, cancel=True, context_token=context_token)
            except E.OpenClawError as exc:
                if not failed:
                    raise
                # Don't hide the block's own error behind the cancel's.
                log.warning("could not cancel the typing indicator for %s: %s", user, exc)


# --- the async driver -------------------------------------------------------------------------------


class AsyncMediaMixin(_MediaFlows):
    """Media and typing methods of :class:`~openclaw_nb.client.AsyncClient` (same arguments, awaited)."""

    if TYPE_CHECKING:

        async def _run(self, flow: Flow) -> Any: ...

    async def upload(
        self,
        path_or_bytes: Source,
        to: str,
        kind: str | None = None,
        *,
        name: str | None = None,
        progress: bool | None = None,
    ) -> UploadedMedia:
        """Encrypt and upload a file (or bytes) to the CDN; see :meth:`Client.upload`. Hashing runs in a
        worker thread so the event loop stays responsive."""
        plan, plain = await asyncio.to_thread(_prepare, path_or_bytes, to, kind, name)
        bar = _progress(plan, progress)
        ok = False
        try:
            result = cast(UploadedMedia, await self._run(self._upload_flow(plan, plain, bar)))
            ok = True
            return result
        finally:
            bar.close(ok)

    async def _send_media(
        self,
        source: Source | UploadedMedia,
        to: str,
        kind: C.UploadMediaType | str | None,
        caption: str | None,
        context_token: str | None,
        client_id: str | None,
        name: str | None,
        progress: bool | None,
        run_id: str | None = None,
    ) -> MediaSendResp:
        user = _require_to(to)
        _check_run_id(run_id)
        peer, token, parts = self._media_budget(user, caption, context_token)
        if isinstance(source, UploadedMedia):
            uploaded = source
        else:
            uploaded = await self.upload(source, user, kind, name=name, progress=progress)  # type: ignore[arg-type]
        flow = self._send_media_flow(uploaded, peer, token, parts, client_id, run_id)
        return cast(MediaSendResp, await self._run(flow))

    async def send_image(
        self,
        image: Source | UploadedMedia,
        to: str,
        caption: str | None = None,
        *,
        context_token: str | None = None,
        client_id: str | None = None,
        name: str | None = None,
        progress: bool | None = None,
        run_id: str | None = None,
    ) -> MediaSendResp:
        """Upload an image and send it (a caption goes first, as its own text message)."""
        kind = _media_kind(C.UploadMediaType.IMAGE, image)
        return await self._send_media(image, to, kind, caption, context_token, client_id, name, progress, run_id)

    async def send_file(
        self,
        file: Source | UploadedMedia,
        to: str,
        caption: str | None = None,
        *,
        context_token: str | None = None,
        client_id: str | None = None,
        name: str | None = None,
        progress: bool | None = None,
        run_id: str | None = None,
    ) -> MediaSendResp:
        """Upload a file and send it as a file message."""
        kind = _media_kind(C.UploadMediaType.FILE, file)
        return await self._send_media(file, to, kind, caption, context_token, client_id, name, progress, run_id)

    async def send_video(
        self,
        video: Source | UploadedMedia,
        to: str,
        caption: str | None = None,
        *,
        context_token: str | None = None,
        client_id: str | None = None,
        name: str | None = None,
        progress: bool | None = None,
        run_id: str | None = None,
    ) -> MediaSendResp:
        """Upload a video and send it as a video message."""
        kind = _media_kind(C.UploadMediaType.VIDEO, video)
        return await self._send_media(video, to, kind, caption, context_token, client_id, name, progress, run_id)

    async def send_media(
        self,
        path: Source | UploadedMedia,
        to: str,
        caption: str | None = None,
        *,
        kind: str | None = None,
        context_token: str | None = None,
        client_id: str | None = None,
        name: str | None = None,
        progress: bool | None = None,
        run_id: str | None = None,
    ) -> MediaSendResp:
        """Upload and send, choosing image, video or file by the extension's MIME type (as Client.send_media)."""
        return await self._send_media(path, to, kind, caption, context_token, client_id, name, progress, run_id)

    async def typing(
        self, user: str, cancel: bool = False, *, context_token: str | None = None
    ) -> m.SendTypingResp | None:
        """Show the typing indicator to ``user`` (or hide it with ``cancel=True``); None when typing is off for
        the user (an empty ticket), as in :meth:`Client.typing`."""
        return cast("m.SendTypingResp | None", await self._run(self._typing_flow(user, cancel, context_token)))

    @asynccontextmanager
    async def typing_indicator(
        self,
        user: str,
        *,
        context_token: str | None = None,
        keepalive: float | None = C.TYPING_KEEPALIVE_SECONDS,
    ) -> AsyncIterator[None]:
        """Show "typing..." while the block runs; cancelled on the way out, also when the block raises.
        Status 1 goes out again every ``keepalive`` seconds from a task that is cancelled and awaited before
        the cancel is sent (see :meth:`MediaMixin.typing_indicator`).

        >>> async with client.typing_indicator(user):
        ...     answer = await slow_model(question)
        """
        interval = _keepalive_interval(keepalive)
        shown = await self.typing(user, context_token=context_token)
        failed = False
        helper = None
        if interval and shown is not None:

            async def keep_showing() -> None:
                while True:
                    await asyncio.sleep(interval)
                    try:
                        await self.typing(user, context_token=context_token)
                    except Exception as exc:  # the block goes on; the next keepalive may succeed
                        _keepalive_failed(user, exc)

            helper = asyncio.create_task(keep_showing(), name="openclaw-nb-typing")
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            if helper is not None:
                helper.cancel()
                await asyncio.gather(helper, return_exceptions=True)
            try:
                await self.typing(user, cancel=True, context_token=context_token)
            except E.OpenClawError as exc:
                if not failed:
                    raise
                log.warning("could not cancel the typing indicator for %s: %s", user, exc)


__all__ = ["AsyncMediaMixin", "MediaMixin", "MediaSendResp", "UploadedMedia", "split_text"]
