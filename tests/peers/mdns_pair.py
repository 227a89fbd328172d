"""Two ``artdag daemon`` processes with mDNS on and no bootstrap list; exits 0 once each has
found and dialled the other. Not a test itself: tests/integration/test_mdns.py runs it inside a
fresh network namespace (``unshare -n``) whose only interface is a multicast-enabled loopback, so
the mDNS traffic never leaves this machine's sandbox.

Usage, from the repository root: python -m tests.peers.mdns_pair WORKDIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.harness.daemons import DaemonProcess, wait_until


def main() -> int:
    root = Path(sys.argv[1])
    a = DaemonProcess(root / "a", ARTDAG_MDNS="true", ARTDAG_BOOTSTRAP="").start()
    b = DaemonProcess(root / "b", ARTDAG_MDNS="true", ARTDAG_BOOTSTRAP="").start()
    try:

        def met() -> bool:
            return any(p["peer_id"] == b.peer_id for p in a.peers()) and any(
                p["peer_id"] == a.peer_id for p in b.peers()
            )

        took = wait_until(met, 30, "the two daemons to find each other by mDNS")
        print(f"FOUND {took:.2f}s", flush=True)
        return 0
    finally:
        a.stop()
        b.stop()


if __name__ == "__main__":
    sys.exit(main())
