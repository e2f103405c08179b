# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``$(VAR)`` references in env values, command and args, expanded by Kubernetes' rules.

The kubelet's rules (third_party/forked/golang/expansion): ``$(NAME)`` is replaced by the value of
NAME when NAME is defined, and left as written when it is not; ``$$`` is an escaped ``$``, so
``$$(NAME)`` gives the literal ``$(NAME)``; any other ``$`` is kept. An env value may refer to the
variables defined before it (and to those from envFrom); command and args to the whole env.

The expansion happens when a container's Docker arguments are made, not in the canonical
configuration: the configuration keeps the text as written, so a pod converged before podkit
expanded references keeps its configuration hash (an upgrade never recreates it by itself).
Pure.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional


def expand(text: str, env: Mapping[str, str]) -> str:
    """``text`` with ``$(NAME)`` replaced from ``env``, Kubernetes' way."""
    if "$" not in text:
        return text
    out: List[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char != "$" or i + 1 >= n:
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                # An unterminated reference is kept as written.
                out.append(text[i:])
                break
            name = text[i + 2:end]
            out.append(env[name] if name in env else text[i:end + 1])
            i = end + 1
        else:
            out.append("$")
            i += 1
    return "".join(out)


def expand_env(env: Mapping[str, str]) -> Dict[str, str]:
    """Each value expanded against the variables before it, in order."""
    result: Dict[str, str] = {}
    for name, value in env.items():
        result[name] = expand(value, result)
    return result


def expand_list(items: Optional[List[str]], env: Mapping[str, str]) -> Optional[List[str]]:
    return None if items is None else [expand(item, env) for item in items]
