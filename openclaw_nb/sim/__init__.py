"""A protocol-faithful local iLink API server and CDN for learning, testing and demos.

:class:`SimState` is the simulator's world without HTTP: users, bots, QR codes, messages and the CDN.
"""

from .state import (
    BotLogin,
    FaultRule,
    Notification,
    OutboxEntry,
    QrCode,
    QrScenario,
    SimBot,
    SimConfig,
    SimError,
    SimState,
    SimUser,
    TypingEvent,
    user_id_of,
)

__all__ = [
    "BotLogin",
    "FaultRule",
    "Notification",
    "OutboxEntry",
    "QrCode",
    "QrScenario",
    "SimBot",
    "SimConfig",
    "SimError",
    "SimState",
    "SimUser",
    "TypingEvent",
    "user_id_of",
]
