"""Users, bots and their tokens, and the QR login that makes them: scenarios, scanning, verify codes,
confirmation, expiry, and ``get_qrcode_status`` as a long poll.
"""

from __future__ import annotations

import copy
import dataclasses
import secrets
from collections.abc import Iterable
from typing import Any

from ..protocol import constants as C
from .base import SimBase
from .config import CONTROL_PREFIX, PRIMARY, SimError
from .records import BotLogin, QrCode, QrScenario, SimBot, SimUser


class AccountsRoom(SimBase):
    """Users, bots, tokens and the QR login."""

    # --- users and bots ----------------------------------------------------------------------------

    def add_user(self, user: str, name: str | None = None) -> str:
        """Make a simulated WeChat user known (``"alice"`` → ``alice@im.wechat``); returns the user id."""
        with self._lock:
            return self._user(user, name).user_id

    def _new_bot(self, owner_id: str) -> SimBot:
        bot = SimBot(
            bot_id=f"{secrets.token_hex(8)}@im.bot",
            owner_id=owner_id,
            token=self._new_token(),
            created_ms=self.now_ms(),
            nonce=secrets.token_hex(4),
        )
        self._bots[bot.bot_id] = bot
        self._tokens[bot.token] = bot.bot_id
        self._latest_bot = bot.bot_id
        return bot

    @staticmethod
    def _new_token() -> str:
        return secrets.token_hex(32)

    def _rotate(self, bot: SimBot) -> None:
        self._tokens.pop(bot.token, None)
        bot.token = self._new_token()
        self._tokens[bot.token] = bot.bot_id
        self._latest_bot = bot.bot_id
        # The held long polls of the old token must answer -14 now.
        self._changed(("bot", bot.bot_id))

    def _login_of(self, bot: SimBot) -> BotLogin:
        return BotLogin(bot.token, bot.bot_id, self.base_url, bot.owner_id)

    def login_bot(self, user_id: str | None = None) -> BotLogin:
        """Create a new bot owned by ``user_id`` (default: the config's default user) and return its
        credentials, without a QR login. For tests of everything that comes after login.

        >>> login = sim.login_bot("alice")  # doctest: +SKIP
        >>> login.bot_token, login.ilink_bot_id, login.baseurl  # doctest: +SKIP
        """
        with self._lock:
            owner = self._user(user_id)
            bot = self._new_bot(owner.user_id)
            self._changed(("bot", bot.bot_id))
            return self._login_of(bot)

    def revoke_token(self, bot_id: str | None = None) -> None:
        """Make a bot's token stale, as token rotation or a login elsewhere would: its next call gets -14."""
        with self._lock:
            bot = self._bot(bot_id)
            self._tokens.pop(bot.token, None)
            bot.token = ""
            self._changed(("bot", bot.bot_id))

    @property
    def bots(self) -> dict[str, SimBot]:
        """Copies of the bots, by id (the inbox lists are shared: treat them as read-only)."""
        with self._lock:
            return {k: copy.copy(v) for k, v in self._bots.items()}

    @property
    def users(self) -> dict[str, SimUser]:
        with self._lock:
            return {k: copy.copy(v) for k, v in self._users.items()}

    @property
    def latest_bot_id(self) -> str | None:
        return self._latest_bot

    # --- QR login ----------------------------------------------------------------------------------

    def set_qr_scenario(self, qrcode: str | None = None, *, count: int | None = None, **flags: Any) -> QrScenario:
        """Choose the path of a QR code.

        With ``qrcode``: that (existing) code. Without: new QR codes, the next ``count`` ones only, or all of
        them from now on when ``count`` is None. Flags: see :class:`QrScenario`.

        >>> sim.set_qr_scenario(verify_code="123456", count=1)  # doctest: +SKIP
        """
        scenario = QrScenario.build(**flags)
        with self._lock:
            if qrcode is not None:
                qr = self._qr(qrcode)
                qr.scenario = scenario
                self._changed(("qr", qr.qrcode))
            elif count is None:
                self._default_scenario = scenario
                self._planned.clear()
            else:
                if count < 1:
                    raise SimError("count is a positive number of QR codes")
                self._planned.extend(dataclasses.replace(scenario) for _ in range(count))
            self._changed()
            return scenario

    def clear_qr_scenarios(self) -> None:
        """New QR codes take the plain path again (wait → scaned → confirmed)."""
        with self._lock:
            self._default_scenario = None
            self._planned.clear()
            self._changed()

    def create_qrcode(self, local_tokens: Iterable[Any] | None = None) -> dict[str, Any]:
        """``get_bot_qrcode``: a fresh QR code and the URL of its scan page."""
        with self._lock:
            now = self.now()
            if self._planned:
                scenario = self._planned.popleft()
            elif self._default_scenario is not None:
                scenario = dataclasses.replace(self._default_scenario)
            else:
                scenario = QrScenario()
            tokens = [t for t in (local_tokens or []) if isinstance(t, str)][: C.MAX_LOCAL_TOKENS]
            qr = QrCode(secrets.token_hex(16), now, now + self.config.qr_lifetime, scenario, tokens)
            self._qrcodes[qr.qrcode] = qr
            self._latest_qr = qr.qrcode
            self._changed(("qr", qr.qrcode))
            return {"ret": 0, "qrcode": qr.qrcode, "qrcode_img_content": self.scan_url(qr.qrcode)}

    def scan_url(self, qrcode: str) -> str:
        return f"{self.base_url}{CONTROL_PREFIX}/scan/{qrcode}"

    def _qr(self, qrcode: str | None) -> QrCode:
        if qrcode is None:
            if self._latest_qr is None:
                raise SimError("no QR code has been fetched yet (get_bot_qrcode)")
            qrcode = self._latest_qr
        qr = self._qrcodes.get(qrcode)
        if qr is None:
            raise SimError(f"unknown QR code {qrcode!r}")
        self._refresh(qr)
        return qr

    def _bump(self, qr: QrCode, status: str) -> None:
        qr.status = status
        qr.version += 1
        self._changed(("qr", qr.qrcode))

    def _auto_delay(self, qr: QrCode) -> float | None:
        delay = qr.scenario.auto_confirm
        return self.config.auto_confirm if delay is None else delay

    def _refresh(self, qr: QrCode) -> None:
        """Apply the time-based changes that are due: auto-confirm (scan, then confirm), then expiry."""
        if qr.is_terminal:
            return
        now = self.now()
        delay = self._auto_delay(qr)
        if delay is not None:
            due = qr.created_at + delay
            if now >= due and due < qr.expires_at:
                if qr.status == C.QrStatus.WAIT:
                    self._scan(qr, qr.scenario.user_id)
                if qr.status == C.QrStatus.SCANNED:
                    self._confirm(qr)
        if not qr.is_terminal and now >= qr.expires_at:
            self._bump(qr, C.QrStatus.EXPIRED)

    def _next_due(self, qr: QrCode) -> float | None:
        """Seconds (simulated clock) until the next time-based change of this QR code, if any."""
        if qr.is_terminal:
            return None
        now = self.now()
        times = [qr.expires_at]
        delay = self._auto_delay(qr)
        if delay is not None and qr.status in (C.QrStatus.WAIT, C.QrStatus.SCANNED):
            times.append(qr.created_at + delay)
        return max(0.0, min(times) - now)

    def _scan(self, qr: QrCode, user: str | None) -> None:
        qr.user_id = self._user(user or qr.scenario.user_id).user_id
        self._bump(qr, C.QrStatus.NEED_VERIFY_CODE if qr.scenario.verify_code else C.QrStatus.SCANNED)

    def _confirm(self, qr: QrCode) -> None:
        assert qr.user_id is not None
        owned = [b for b in self._bots.values() if b.owner_id == qr.user_id]
        bound = next((b for b in owned if b.token and b.token in qr.local_tokens), None)
        if qr.scenario.binded or bound is not None:
            qr.bot_id = bound.bot_id if bound is not None else None
            self._bump(qr, C.QrStatus.BINDED_REDIRECT)
            return
        if owned and self.config.rotate_token_on_relogin:
            bot = owned[-1]
            self._rotate(bot)
        else:
            bot = self._new_bot(qr.user_id)
        qr.bot_id, qr.bot_token = bot.bot_id, bot.token
        self._bump(qr, C.QrStatus.CONFIRMED)
        self._changed(("bot", bot.bot_id))

    def scan(self, qrcode: str | None = None, user: str | None = None) -> str:
        """The user (default: the scenario's or the config's default user) scans the QR code (default: the
        latest). Returns the new status: ``scaned``, or ``need_verifycode`` when the scenario has a code."""
        with self._lock:
            qr = self._qr(qrcode)
            if qr.is_terminal:
                raise SimError(f"QR code {qr.qrcode} is already {qr.status}; fetch a new one")
            if qr.status != C.QrStatus.WAIT:
                raise SimError(f"QR code {qr.qrcode} was already scanned (status {qr.status})")
            self._scan(qr, user)
            return qr.status

    def confirm(self, qrcode: str | None = None, user: str | None = None) -> str:
        """The user confirms the login on the phone (scanning first if nobody has). Returns the new status,
        ``confirmed`` or ``binded_redirect``. Fails while a verify code is still missing."""
        with self._lock:
            qr = self._qr(qrcode)
            if qr.is_terminal:
                raise SimError(f"QR code {qr.qrcode} is already {qr.status}; fetch a new one")
            if qr.status == C.QrStatus.WAIT:
                self._scan(qr, user)
            if qr.status == C.QrStatus.NEED_VERIFY_CODE:
                raise SimError(
                    f"QR code {qr.qrcode} needs the verify code {qr.scenario.verify_code} first: the client sends "
                    "it as verify_code on get_qrcode_status"
                )
            self._confirm(qr)
            return qr.status

    def expire(self, qrcode: str | None = None) -> str:
        """Expire a QR code now (the client must fetch a new one)."""
        with self._lock:
            qr = self._qr(qrcode)
            if not qr.is_terminal:
                self._bump(qr, C.QrStatus.EXPIRED)
            return qr.status

    def submit_verify_code(self, qrcode: str, code: str) -> str:
        """What ``get_qrcode_status?verify_code=`` does: right code → ``scaned``; wrong → ``need_verifycode``
        again, and ``verify_code_blocked`` after ``max_wrong_verify_codes`` wrong ones."""
        with self._lock:
            qr = self._qr(qrcode)
            self._verify(qr, code)
            return qr.status

    def _verify(self, qr: QrCode, code: str) -> None:
        if qr.status != C.QrStatus.NEED_VERIFY_CODE:
            return  # a code nobody asked for is ignored
        if code.strip() == qr.scenario.verify_code:
            self._bump(qr, C.QrStatus.SCANNED)
            self._refresh(qr)  # auto-confirm may be waiting for exactly this
            return
        qr.wrong_codes += 1
        if qr.wrong_codes >= self.config.max_wrong_verify_codes:
            self._bump(qr, C.QrStatus.VERIFY_CODE_BLOCKED)
        else:
            self._bump(qr, C.QrStatus.NEED_VERIFY_CODE)  # same status, new version: answered at once

    def qr_status(
        self,
        qrcode: str | None,
        *,
        verify_code: str | None = None,
        role: str = PRIMARY,
        final: bool = False,
        seen: list[int | None] | None = None,
    ) -> tuple[dict[str, Any] | None, float | None]:
        """``get_qrcode_status`` as a long poll: ``(body, None)`` when there is news for this host (or
        ``final``), else ``(None, seconds until the next time-based change or None)`` and the caller waits on
        ``("qr", qrcode)``. An unknown QR code reads as ``expired``, so a client fetches a new one.

        ``seen`` is one held request's memory (a one-element list the caller keeps between checks): a fresh
        request answers at once with news never reported to this host; a held one answers as soon as the
        status moves past what it saw when it started waiting. So a poll the client already gave up on can't
        swallow an update that the client's next poll is waiting for."""
        with self._lock:
            if not qrcode:
                return self._err(C.RET_INVALID_ARGS, "get_qrcode_status needs the qrcode query parameter"), None
            qr = self._qrcodes.get(qrcode)
            if qr is None:
                return {"ret": 0, "status": C.QrStatus.EXPIRED}, None
            self._refresh(qr)
            if verify_code:
                if qr.status == C.QrStatus.NEED_VERIFY_CODE and qr.codes_held < qr.scenario.verify_late:
                    qr.codes_held += 1  # no verdict yet: the client must send the code again
                    return {"ret": 0, "status": C.QrStatus.WAIT}, None
                self._verify(qr, verify_code)
            if seen is not None and seen[0] is not None:
                news = qr.version != seen[0]
            else:
                news = qr.version != qr.reported.get(role, 0)
            if not (final or qr.is_terminal or news):
                if seen is not None and seen[0] is None:
                    seen[0] = qr.version
                return None, self._next_due(qr)
            qr.reported[role] = qr.version
            status = qr.status
            body: dict[str, Any] = {"ret": 0}
            if role == PRIMARY and qr.scenario.redirect and status not in (C.QrStatus.WAIT, C.QrStatus.EXPIRED):
                body["status"] = C.QrStatus.SCANNED_BUT_REDIRECT
                body["redirect_host"] = self.redirect_host
                return body, None
            body["status"] = status
            if status == C.QrStatus.CONFIRMED:
                assert qr.bot_id is not None and qr.bot_token is not None and qr.user_id is not None
                baseurl = qr.scenario.baseurl or self.base_url
                if baseurl == "redirect":
                    baseurl = self.base_url.split("://", 1)[0] + "://" + self.redirect_host
                body.update(ilink_bot_id=qr.bot_id, baseurl=baseurl, ilink_user_id=qr.user_id)
                if not qr.token_handed:
                    # The token goes out once: whoever polls this code later (a second client, a
                    # stranger who saw the QR) learns that it was confirmed, not the token.
                    body["bot_token"] = qr.bot_token
                for name in qr.scenario.omit or ():
                    body.pop(name, None)
                qr.token_handed = qr.token_handed or "bot_token" in body
            return body, None

    @property
    def qrcodes(self) -> dict[str, QrCode]:
        """Copies of all QR codes, by id, with time-based changes applied."""
        with self._lock:
            for qr in self._qrcodes.values():
                self._refresh(qr)
            return {k: copy.deepcopy(v) for k, v in self._qrcodes.items()}

    @property
    def latest_qrcode(self) -> str | None:
        return self._latest_qr

    # --- views -------------------------------------------------------------------------------------

    def _qr_json(self, qr: QrCode) -> dict[str, Any]:
        return {
            "qrcode": qr.qrcode,
            "status": qr.status,
            "scenario": qr.scenario.to_json(),
            "user_id": qr.user_id,
            "wrong_codes": qr.wrong_codes,
            "created_ms": int(qr.created_at * 1000),
            "expires_ms": int(qr.expires_at * 1000),
            "scan_url": self.scan_url(qr.qrcode),
            "ilink_bot_id": qr.bot_id,
        }

    def qr_json(self, qrcode: str) -> dict[str, Any]:
        with self._lock:
            return self._qr_json(self._qr(qrcode))
