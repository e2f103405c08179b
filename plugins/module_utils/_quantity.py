# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Memory and CPU quantities: Kubernetes and Docker spellings, parsed exactly.

Memory comes out in bytes, CPU in millicores. All arithmetic is done on Decimal and
integers so that ``1.1Gi`` or ``0.3`` never pick up float rounding; a value that does
not come out as a whole number of bytes (or millicores) is refused, not rounded, so the
user sees exactly the number that will be written to the cgroup.

The one real ambiguity is the letter ``m``:

* inside a Kubernetes manifest (``kubernetes=True``) ``m`` is *milli*: ``129m`` is 0.129 bytes.
  That is almost always a mistake for memory, so it is accepted only where it yields whole
  bytes (``128974848000m`` = 128974848) and refused otherwise, with a hint to write ``Mi``;
* in podkit's native options (``kubernetes=False``) ``m`` is what ``docker run --memory``
  means: mebibytes (``512m`` = 536870912).

More generally, outside a manifest every suffix Docker knows (``b k m g t p``, either case,
optionally followed by ``i`` and/or ``b``) is read as Docker reads it, i.e. *binary*:
``512MB`` = ``512M`` = ``512m`` = 536870912, ``100k`` = 102400. Forms Docker does not have
keep their Kubernetes meaning there too: plain integers, exponents (``129e6``) and ``E``/``Ei``.
Inside a manifest only the Kubernetes rules apply: ``129M`` = 129000000, ``256Mi`` = 268435456,
``512MB`` is an error.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Optional

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

MIB = 1024 * 1024
# The smallest memory limit Docker accepts (and the kernel can usefully enforce).
MIN_MEMORY = 6 * MIB

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DOCKER = {"b": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
# Kubernetes: <number><suffix>, suffix one of binary SI, decimal SI (incl. m) or e/E<signed int>.
_K8S_RE = re.compile(r"^\+?(?P<num>%s)(?:(?P<exp>[eE][-+]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E))?$" % _NUMBER)
# Docker's units.RAMInBytes: <number>[ ]<k|m|g|t|p>[i][b], case-insensitive, binary; or a bare b.
_DOCKER_RE = re.compile(r"^(?P<num>%s) ?(?:(?P<unit>[kmgtpKMGTP])[iI]?[bB]?|[bB])$" % _NUMBER)

MEMORY_FORMS = ("bytes as an integer (268435456), a Kubernetes quantity (256Mi, 1Gi, 129M, 129e6)"
                " or a Docker size (512m, 512MB, 1g, 100k; binary, as docker run --memory reads them)")
MEMORY_FORMS_K8S = "a Kubernetes quantity: an integer of bytes (268435456), 256Mi, 1Gi, 129M or 129e6"
CPU_FORMS = "cores (0.5, 2, \"1.5\") or millicores (\"500m\"), at most 3 decimal places"


def _number(value: object) -> Optional[Decimal]:
    """A plain Python number as a Decimal (via str, so 0.1 stays 0.1), or None for non-numbers."""
    if isinstance(value, bool):
        return None  # YAML 'yes' is not a quantity
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        try:
            amount = Decimal(repr(value))
        except InvalidOperation:
            return None
        return amount if amount.is_finite() else None
    return None


def _kubernetes_amount(text: str) -> Optional[Decimal]:
    """The value of a Kubernetes quantity string (unitless; bytes for memory, cores for CPU)."""
    match = _K8S_RE.match(text)
    if not match:
        return None
    amount = Decimal(match.group("num"))
    if match.group("exp"):
        exponent = int(match.group("exp")[1:])
        if abs(exponent) > 30:  # no real limit is that large; keeps Decimal from doing silly work
            return None
        return amount.scaleb(exponent)
    suffix = match.group("suffix")
    if suffix is None:
        return amount
    if suffix in _BINARY:
        return amount * (1024 ** _BINARY[suffix])
    if suffix == "m":
        return amount / 1000
    return amount.scaleb(_DECIMAL[suffix])


def _docker_amount(text: str) -> Optional[Decimal]:
    match = _DOCKER_RE.match(text)
    if not match:
        return None
    unit = (match.group("unit") or "b").lower()
    return Decimal(match.group("num")) * (1024 ** _DOCKER[unit])


def parse_memory(value: object, field: str, kubernetes: bool = False, minimum: int = MIN_MEMORY) -> int:
    """Parse a memory quantity into bytes.

    ``value`` is an int (bytes) or a string; ``field`` names the option in error messages
    (``containers[0].resources.limits.memory``). With ``kubernetes=True`` only Kubernetes
    quantity rules apply (lowercase ``m`` is milli); otherwise Docker's sizes are accepted
    too and win where the spellings overlap (lowercase ``m`` is mebibytes, ``k``/``M``/``G``
    are binary). See the module docstring for the full table.

    Raises PodkitError for anything else, for values that are not whole bytes, and for values
    below ``minimum`` (6 MiB by default: Docker refuses smaller memory limits).
    """
    forms = MEMORY_FORMS_K8S if kubernetes else MEMORY_FORMS
    amount = _number(value)
    if amount is None and isinstance(value, str):
        text = value.strip()
        if not kubernetes:
            amount = _docker_amount(text)
        if amount is None:
            amount = _kubernetes_amount(text)
    if amount is None:
        hint = ""
        if kubernetes and isinstance(value, str) and _docker_amount(value.strip()) is not None:
            hint = " (Docker sizes such as 512MB are not Kubernetes quantities; write 512Mi)"
        raise PodkitError("%s: %r is not a valid memory quantity%s; use %s." % (field, value, hint, forms))
    if amount != amount.to_integral_value():
        hint = ""
        if kubernetes and isinstance(value, str) and value.strip().endswith("m"):
            hint = " ('m' means milli in a Kubernetes quantity; for mebibytes write Mi)"
        raise PodkitError("%s: %r is not a whole number of bytes%s; use %s." % (field, value, hint, forms))
    amount = int(amount)
    if amount <= 0:
        raise PodkitError("%s: %r must be a positive memory quantity; use %s." % (field, value, forms))
    if amount < minimum:
        raise PodkitError("%s: %r (%d bytes) is below the minimum of %d bytes (%s); use a larger value such as 64Mi."
                          % (field, value, amount, minimum, format_bytes(minimum)))
    return amount


def parse_cpu(value: object, field: str, kubernetes: bool = False) -> int:
    """Parse a CPU quantity into millicores.

    Accepts numbers of cores (``0.5``, ``2``, ``"1.5"``, what ``docker run --cpus`` takes) and
    Kubernetes millicores (``"500m"``); with ``kubernetes=True`` also Kubernetes exponents
    (``"5e-1"``). The result must be positive and a whole number of millicores: ``0.0005`` or
    ``"0.5m"`` are refused rather than silently rounded.
    """
    amount = _number(value)
    if amount is None and isinstance(value, str):
        text = value.strip()
        match = _K8S_RE.match(text)
        # Only cores, millicores and (in a manifest) exponents make sense for CPU; "2k" cores does not.
        if match and (match.group("suffix") in (None, "m")) and (kubernetes or not match.group("exp")):
            amount = _kubernetes_amount(text)
    if amount is None:
        raise PodkitError("%s: %r is not a valid CPU quantity; use %s." % (field, value, CPU_FORMS))
    millis = amount * 1000
    if millis != millis.to_integral_value():
        raise PodkitError("%s: %r is finer than a millicore (0.001 CPU); use %s." % (field, value, CPU_FORMS))
    millis = int(millis)
    if millis <= 0:
        raise PodkitError("%s: %r must be a positive CPU quantity; use %s." % (field, value, CPU_FORMS))
    return millis


def format_bytes(value: int) -> str:
    """The shortest exact Kubernetes binary spelling of ``value`` (268435456 -> '256Mi')."""
    for suffix, power in sorted(_BINARY.items(), key=lambda item: -item[1]):
        unit = 1024 ** power
        if value >= unit and value % unit == 0:
            return "%d%s" % (value // unit, suffix)
    return str(value)


def format_cpu(millis: int) -> str:
    """Millicores as Kubernetes writes them: whole cores as '2', else '500m'."""
    if millis % 1000 == 0:
        return str(millis // 1000)
    return "%dm" % millis
