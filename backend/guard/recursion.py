"""The interpreter's recursion limit, put back where it protects the C stack.

py_ecc (imported with web3 and eth-tester) raises ``sys.setrecursionlimit`` to 100,000 when it
is imported, so Python's guard never fires before the C stack overflows: a body of 100,000
nested JSON arrays crashed the whole API process (and its embedded worker) with a segfault,
before any authentication and without a log line. py-evm asks for 12,288 (1024 nested EVM
calls), which the default 8 MiB stack holds, in the main thread and in worker threads alike:
that is the limit this process keeps.
"""

from __future__ import annotations

import sys

# py-evm's EVM_RECURSION_LIMIT: what the in-process eth-tester chain needs, and no more.
RECURSION_LIMIT = 1024 * 12


def cap_recursion_limit(limit: int = RECURSION_LIMIT) -> None:
    """Import the modules that raise the limit as a side effect, then set it to ``limit``, so a
    later import of them can't raise it again (each raises it only on first import)."""
    import eth  # noqa: F401  (py-evm: sets max(12288, current) on import)
    import py_ecc  # noqa: F401  (sets max(100000, current) on import)

    sys.setrecursionlimit(limit)
