# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type for errors a user can cause, and how a module reports it."""

from __future__ import annotations

import traceback
from typing import Any, Dict, Optional, Sequence


class PodkitError(Exception):
    """A user-facing failure: bad input, a conflict with the host's state, a refused action.

    The message says which object, what was wrong and what to do; modules turn it into
    fail_json(msg=...). ``details`` is merged into the failure result (for example the
    log tail of a failed init container).
    """

    def __init__(self, msg: str, **details: Any) -> None:
        super(PodkitError, self).__init__(msg)
        self.msg = msg
        self.details = details


class MissingLibrary(PodkitError):
    """A Python library the host lacks; the module reports it with Ansible's standard message.

    Raised inside the ``except ImportError`` that found it, so the traceback is that import's.
    """

    def __init__(self, library: str, import_traceback: Optional[str] = None) -> None:
        super(MissingLibrary, self).__init__("the %s Python library is missing on the host" % library)
        self.library = library
        self.traceback = import_traceback or traceback.format_exc()


def fail(module: Any, error: PodkitError, **result: Any) -> None:
    """Report a PodkitError through the module, keeping what was already done in ``result``."""
    result.update(error.details)
    module.fail_json(msg=error.msg, **result)


def check_fields(obj: Any, allowed: Sequence[str], path: str, what: str = "mapping",
                 required: bool = False) -> Dict[str, Any]:
    """``obj`` as a mapping whose keys are all in ``allowed``; an error naming ``path`` and the field
    otherwise. None is an empty mapping unless ``required``."""
    if obj is None and not required:
        return {}
    if not isinstance(obj, dict):
        raise PodkitError("%s must be a %s, got %s." % (path, what, type(obj).__name__))
    for key in obj:
        if key not in allowed:
            raise PodkitError("%s.%s is not supported by podkit; remove it (supported here: %s)."
                              % (path, key, ", ".join(allowed)))
    return obj
