"""Settings every test runs with.

The suite runs as the local broker's admin, so it is marked as a development run
(``MSHT_DEV=1``); without it every command refuses to start with ``MSHT_USERNAME`` unset.
Subprocesses started by tests inherit it.
"""

import os

os.environ.setdefault("MSHT_DEV", "1")
