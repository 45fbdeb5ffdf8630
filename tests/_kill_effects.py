"""An action for the crash test: append each call to a file, durably.

``hooklab serve --action _kill_effects:append`` imports it (the test puts this
folder on PYTHONPATH). Each line is ``idempotency_key attempt pid``.
"""

from __future__ import annotations

import os
import time

from hooklab.actions import Event


def append(event: Event) -> None:
    """Write one line per call and fsync it, then linger to widen the crash window."""
    line = f"{event.idempotency_key} {event.attempt} {os.getpid()}\n"
    fd = os.open(
        os.environ["HOOKLAB_EFFECTS_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT
    )
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)

    time.sleep(float(os.environ.get("HOOKLAB_EFFECTS_DELAY", "0")))
