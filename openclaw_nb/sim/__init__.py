"""A protocol-faithful local iLink API server and CDN for learning, testing and demos.

``with Simulator() as sim:`` serves the real wire format on 127.0.0.1; ``sim.say("alice", "hi")`` plays a
WeChat user; ``sim.outbox`` shows what bots sent. :class:`SimState` is the same world without HTTP.
"""

from .app import create_app
from .server import Simulator, SimulatorWarning
from .state import (
    BotLogin,
    ConformanceEntry,
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
    "ConformanceEntry",
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
    "Simulator",
    "SimulatorWarning",
    "TypingEvent",
    "create_app",
    "user_id_of",
]
