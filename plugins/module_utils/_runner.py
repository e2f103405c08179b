# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way every podkit module runs (as community.docker's ``run_module``).

Options checked, secrets registered for masking, a client connected (the socket reader for
read-only modules on a local socket, the Docker SDK otherwise), one converge call, the client
closed, and every user error reported through ``fail_json`` with what was already done.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.podkit.docker.plugins.module_utils._docker import (
    DOCKER_COMMON_ARGS, DockerError, LazyClient, connect, require_sdk)
from ansible_collections.podkit.docker.plugins.module_utils._errors import MissingLibrary, PodkitError, fail

Converge = Callable[..., Dict[str, Any]]
FindSecrets = Callable[[Dict[str, Any]], Iterable[str]]


def _module_class(find_secrets: Optional[FindSecrets]) -> type:
    """AnsibleModule, or a subclass that masks ``find_secrets(params)`` in its invocation log.

    AnsibleModule logs its invocation on the host (journal or syslog) from its constructor,
    before the caller could add anything to ``no_log_values``: the secrets are added there.
    """
    if find_secrets is None:
        return AnsibleModule

    class SecretMaskingModule(AnsibleModule):
        def _log_invocation(self) -> None:
            self.no_log_values.update(find_secrets(self.params))
            super(SecretMaskingModule, self)._log_invocation()

    return SecretMaskingModule


def run_module(argument_spec: Dict[str, Any], converge: Converge, result: Dict[str, Any], read_only: bool = False,
               prepare: Optional[Callable[[Dict[str, Any]], Optional[Dict[str, Any]]]] = None,
               find_secrets: Optional[FindSecrets] = None,
               needs_no_log: Optional[Callable[[Dict[str, Any]], Optional[str]]] = None,
               connect_when_needed: bool = False,
               **module_kwargs: Any) -> None:
    """Run ``converge(client, params, check_mode, diff[, secrets=...])`` as a module and exit.

    ``result`` is what the module returns when it fails before converging; ``prepare(params)``
    checks the options and manifests before the engine is reached, so bad input is reported as
    itself even when no engine answers (and check mode lints without one); what it returns (the
    parsed input) is passed on to ``converge`` as keyword arguments. ``find_secrets(params)`` gives
    values that must never be shown (``converge`` then receives the set, to add what it finds);
    ``needs_no_log(params)`` names an option whose result holds secrets: the task must then be no_log.
    ``connect_when_needed``: ``converge`` gets a client that connects on first use, for a module that
    decides itself whether it needs the engine (pods, when every entry was refused before it).
    """
    module = _module_class(find_secrets)(argument_spec=dict(argument_spec, **DOCKER_COMMON_ARGS),
                                         supports_check_mode=True, **module_kwargs)
    params = module.params
    option = needs_no_log(params) if needs_no_log else None
    if option and not module.no_log:
        module.fail_json(msg="%s: the result would hold Secret values; set no_log: true on the task (and register"
                             " the result) so that they reach no output or log, or leave %s out to get the Secrets"
                             " without their values." % (option, option), **result)
    secrets = set(find_secrets(params)) if find_secrets else set()
    module.no_log_values.update(secrets)
    extra = dict(secrets=secrets) if find_secrets else {}
    try:
        if prepare is not None:
            extra.update(prepare(params) or {})
        # After the input is checked: a host without Docker (nor its SDK) still lints manifests.
        if not (read_only and params["docker_host"].startswith("unix://")):
            require_sdk(module)
        opener = LazyClient if connect_when_needed else connect
        client = opener(params["docker_host"], params["timeout"], read_only=read_only)
        try:
            result.update(converge(client, params, module.check_mode, module._diff, **extra))
        finally:
            client.close()
    except MissingLibrary as error:
        module.fail_json(msg=missing_required_lib(error.library), exception=error.traceback, **result)
    except PodkitError as error:
        module.no_log_values.update(secrets)
        fail(module, error, **result)
    except DockerError as error:
        module.no_log_values.update(secrets)
        module.fail_json(msg="docker_host: the Docker engine refused a call: %s" % error, **result)
    module.no_log_values.update(secrets)
    module.exit_json(**result)
