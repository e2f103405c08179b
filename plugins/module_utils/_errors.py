# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type for errors a user can cause, and how a module reports it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class PodkitError(Exception):
    """A user-facing failure: bad input, a conflict with the host's state, a refused action.

    The message says which object, what was wrong and what to do; modules turn it into
    fail_json(msg=...). ``details`` is merged into the failure result (for example the
    log tail of a failed init container).
    """

    def __init__(self, msg, **details):
        super(PodkitError, self).__init__(msg)
        self.msg = msg
        self.details = details


def fail(module, error, **result):
    """Report a PodkitError through the module, keeping what was already done in ``result``."""
    result.update(error.details)
    module.fail_json(msg=error.msg, **result)
