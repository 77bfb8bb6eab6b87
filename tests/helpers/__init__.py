"""What every test shares: the test project, the no-op drivers, waiting for a status."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

PROJECT = "e3cd678b11784734bc366148aa37580e"
NOOP_DRIVERS = {
    "LBAAS__controller_worker__compute_driver": "compute_noop_driver",
    "LBAAS__controller_worker__network_driver": "network_noop_driver",
    "LBAAS__controller_worker__amphora_driver": "amphora_noop_driver",
    "LBAAS__certificates__cert_generator": "cert_noop_generator",
}


def wait_for(fetch: Callable[[], dict[str, Any]], field: str, wanted: str,
             timeout: float = 10.0) -> dict[str, Any]:
    """Poll ``fetch`` until ``field`` equals ``wanted``; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        current = fetch()
        if current.get(field) == wanted:
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"{field} stayed {current.get(field)!r}, wanted {wanted!r}: {current}")
        time.sleep(0.02)


def in_threads(count: int, target: Callable[[int], None]) -> None:
    """Run ``target(0)`` ... ``target(count - 1)`` each in its own thread; wait for all."""
    threads = [threading.Thread(target=target, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
