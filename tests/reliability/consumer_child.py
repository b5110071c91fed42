"""A consumer process for the crash tests, killed with SIGKILL at random moments by the parent.

``updates`` mode: ``for msg in client.updates()``, each message's id appended to OUT as the loop body (one
``os.write``, which a SIGKILL does not undo). ``feed`` mode: ``client.stream()``, whose own rows log is the
output. Persistence goes to ``$OPENCLAW_NB_HOME``. Usage: consumer_child.py MODE BASE_URL TOKEN BOT_ID OUT
"""

from __future__ import annotations

import os
import sys
import threading

from openclaw_nb.client import Client
from openclaw_nb.protocol.poll import PollPolicy

FAST = PollPolicy(retry_delay=0.01, backoff_after=3, backoff_delay=0.05)


def main() -> None:
    mode, base_url, token, bot_id, out = sys.argv[1:6]
    with Client(token, base_url=base_url, bot_id=bot_id, record=False) as client:
        if mode == "updates":
            fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(fd, b"start\n")
            for msg in client.updates(policy=FAST, notify=False):
                os.write(fd, f"{msg.message_id}\n".encode())
        else:
            feed = client.stream(policy=FAST, notify=False)
            with open(out, "a") as fh:
                fh.write("start\n")
            threading.Event().wait()  # until killed
            feed.stop()


if __name__ == "__main__":
    main()
