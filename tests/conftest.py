"""Settings for the whole test session (both environments).

The Ray tests start single-machine clusters: all of Ray's traffic stays on the loopback
interface. Ray reads this when it is first imported, by whichever module imports it first
(vLLM may), so it is set here, before any test module is imported.
"""

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
