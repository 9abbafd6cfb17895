"""``import ats.auto`` initialises ATS from configuration (files and environment),
exactly as ``ats-run`` does. Importing it again, or in a process where ATS is already
running, does nothing.
"""

from __future__ import annotations

from ats import _runtime

_runtime.init_once_from_environment()
