"""The protocol recorder: every HTTP exchange a client makes, in a bounded log, redacted when first looked at.

``client.log`` is a :class:`Recorder`. Views: ``log[-1]``, ``log.frame()``, ``log.show()``, ``log.filter()``,
``log.summary()``; exports: ``log.to_har()``, ``log.to_jsonl()`` / :func:`load_log`; comparisons:
:func:`diff` and :func:`replay`. pandas and rich are imported only when a view needs them.
"""

from .capture import ATTEMPT_KEY, CALL_KEY, call_from_path
from .compare import VOLATILE_FIELDS, Difference, DiffResult, ReplayResult, diff, replay
from .exchange import Binary, Exchange, Text
from .log import ExchangeLog, LogBudget, Recorder, footprint, load_log

__all__ = [
    "ATTEMPT_KEY",
    "CALL_KEY",
    "VOLATILE_FIELDS",
    "Binary",
    "DiffResult",
    "Difference",
    "Exchange",
    "ExchangeLog",
    "LogBudget",
    "Recorder",
    "ReplayResult",
    "Text",
    "call_from_path",
    "diff",
    "footprint",
    "load_log",
    "replay",
]
