# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The quantity table: Kubernetes and Docker spellings, the ambiguous ones and the invalid ones."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._quantity import (
    MIN_MEMORY, format_bytes, format_cpu, parse_cpu, parse_memory)

MI = 1024 ** 2
GI = 1024 ** 3

# (value, bytes) valid under Kubernetes rules, whether in a manifest or not.
KUBERNETES_BOTH = [
    (128974848, 128974848),
    ("128974848", 128974848),
    ("129e6", 129000000),
    ("129E6", 129000000),
    ("1.29e8", 129000000),
    ("123Mi", 123 * MI),
    ("256Mi", 268435456),
    ("1Gi", GI),
    ("1.5Gi", 1610612736),
    ("0.5Gi", 512 * MI),
    ("8192Ki", 8 * MI),
    ("1Ti", 1024 ** 4),
    ("1Pi", 1024 ** 5),
    ("1Ei", 1024 ** 6),
    ("2E", 2 * 10 ** 18),
    ("+64Mi", 64 * MI),
    (" 64Mi ", 64 * MI),
    (float(2 ** 30), GI),
]

# Kubernetes decimal SI suffixes: only inside a manifest; outside, Docker's binary reading wins.
KUBERNETES_DECIMAL = [
    ("129M", 129000000),
    ("1G", 10 ** 9),
    ("7000k", 7000000),
    ("1T", 10 ** 12),
    ("1P", 10 ** 15),
    ("128974848000m", 128974848),  # milli that comes out as whole bytes
]

DOCKER = [
    ("512m", 512 * MI),
    ("512mb", 512 * MI),
    ("512MB", 536870912),  # the article's figure
    ("512M", 512 * MI),
    ("512 MB", 512 * MI),
    ("512MiB", 512 * MI),
    ("1g", GI),
    ("1gb", GI),
    ("1G", GI),
    ("1.5g", 1536 * MI),
    ("7000k", 7000 * 1024),
    ("1t", 1024 ** 4),
    ("1p", 1024 ** 5),
    ("7340032b", 7340032),
    ("7340032B", 7340032),
]


@pytest.mark.parametrize("value,expected", KUBERNETES_BOTH)
@pytest.mark.parametrize("kubernetes", [True, False])
def test_kubernetes_forms(value, expected, kubernetes):
    assert parse_memory(value, "memory", kubernetes=kubernetes) == expected


@pytest.mark.parametrize("value,expected", KUBERNETES_DECIMAL)
def test_kubernetes_decimal_suffixes_in_a_manifest(value, expected):
    assert parse_memory(value, "memory", kubernetes=True) == expected


@pytest.mark.parametrize("value,expected", DOCKER)
def test_docker_forms_outside_a_manifest(value, expected):
    assert parse_memory(value, "memory") == expected


def test_small_docker_forms_with_a_lower_minimum():
    assert parse_memory("100k", "memory", minimum=1) == 102400
    assert parse_memory("100b", "memory", minimum=1) == 100


@pytest.mark.parametrize("value,docker,kubernetes", [
    ("512m", 512 * MI, None),            # Docker mebibytes; Kubernetes 0.512 bytes -> refused
    ("129M", 129 * MI, 129000000),
    ("7000k", 7000 * 1024, 7000000),
    ("1G", GI, 10 ** 9),
])
def test_ambiguous_spellings(value, docker, kubernetes):
    assert parse_memory(value, "memory", kubernetes=False) == docker
    if kubernetes is None:
        with pytest.raises(PodkitError) as err:
            parse_memory(value, "spec.containers[0].resources.limits.memory", kubernetes=True)
        assert "spec.containers[0].resources.limits.memory" in err.value.msg
        assert "Mi" in err.value.msg  # tells the user how to write mebibytes
    else:
        assert parse_memory(value, "memory", kubernetes=True) == kubernetes


@pytest.mark.parametrize("value", ["512MB", "1gb", "512mb", "100b", "1g", "512 Mi"])
def test_docker_forms_refused_in_a_manifest(value):
    with pytest.raises(PodkitError) as err:
        parse_memory(value, "spec.containers[1].resources.limits.memory", kubernetes=True)
    assert "spec.containers[1].resources.limits.memory" in err.value.msg
    assert repr(value) in err.value.msg


@pytest.mark.parametrize("kubernetes", [True, False])
@pytest.mark.parametrize("value", [
    "", "   ", "abc", "12Q", "1.2.3Gi", "Mi", "-256Mi", "-1", -1, 0, "0", "0Mi", True, None, [1], {"a": 1},
    "1.5", "1.1Ki", "1e400", "0x100", "1_000", "1,5Gi", 1.5, float("nan"), float("inf"), "Gi1",
])
def test_invalid_memory(value, kubernetes):
    with pytest.raises(PodkitError) as err:
        parse_memory(value, "containers[0].memory", kubernetes=kubernetes)
    assert err.value.msg.startswith("containers[0].memory: ")
    assert repr(value) in err.value.msg


@pytest.mark.parametrize("value", [1, "1", "1Mi", "5Mi", 6 * MI - 1, "6291455"])
def test_memory_below_minimum(value):
    with pytest.raises(PodkitError) as err:
        parse_memory(value, "memory")
    assert "memory: " in err.value.msg and "minimum" in err.value.msg
    assert str(MIN_MEMORY) in err.value.msg


def test_minimum_is_accepted():
    assert parse_memory("6Mi", "memory") == MIN_MEMORY == parse_memory(6 * MI, "memory")


def test_message_says_what_forms_are_accepted():
    with pytest.raises(PodkitError) as err:
        parse_memory("lots", "cgroup_parent.memory")
    assert "256Mi" in err.value.msg and "512m" in err.value.msg
    with pytest.raises(PodkitError) as err:
        parse_memory("lots", "spec.containers[0].resources.limits.memory", kubernetes=True)
    assert "256Mi" in err.value.msg and "512m" not in err.value.msg


@pytest.mark.parametrize("value,expected", [
    (0.5, 500), ("0.5", 500), ("500m", 500), (2, 2000), ("2", 2000), ("1.5", 1500), (1.5, 1500),
    ("0.001", 1), ("1m", 1), (0.1, 100), (0.3, 300), ("2.000", 2000), (" 250m ", 250), ("64", 64000),
    (".5", 500),
])
@pytest.mark.parametrize("kubernetes", [True, False])
def test_cpu_forms(value, expected, kubernetes):
    assert parse_cpu(value, "cpus", kubernetes=kubernetes) == expected


def test_cpu_exponent_only_in_a_manifest():
    assert parse_cpu("5e-1", "cpu", kubernetes=True) == 500
    with pytest.raises(PodkitError):
        parse_cpu("5e-1", "cpus")


@pytest.mark.parametrize("kubernetes", [True, False])
@pytest.mark.parametrize("value", [
    0, "0", "0m", -1, "-1", "-500m", "0.0005", "0.5m", 0.0001, "abc", "", "1Gi", "2k", "1.5.1", True, None,
    "500 m", "half", [1], float("nan"),
])
def test_invalid_cpu(value, kubernetes):
    with pytest.raises(PodkitError) as err:
        parse_cpu(value, "spec.containers[0].resources.limits.cpu", kubernetes=kubernetes)
    assert err.value.msg.startswith("spec.containers[0].resources.limits.cpu: ")
    assert repr(value) in err.value.msg


def test_formatting():
    assert format_bytes(268435456) == "256Mi"
    assert format_bytes(402653184) == "384Mi"
    assert format_bytes(GI) == "1Gi"
    assert format_bytes(1000) == "1000"
    assert format_cpu(500) == "500m"
    assert format_cpu(2000) == "2"
