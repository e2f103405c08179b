# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draw time against N for each tool from one run's raw JSON (run by benchmarks/run.py
with the benchmark's own environment, which has matplotlib): chart.py RAW.json OUT.png"""

from __future__ import absolute_import, division, print_function

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position

COLOURS = {"raw": "#444444", "rawpar": "#999999", "podkit": "#1f77b4", "cdocker": "#d62728"}
LABELS = {"raw": "raw docker CLI", "rawpar": "raw CLI, 4 at a time", "podkit": "podkit", "cdocker": "community.docker"}
PANELS = (
    ("Cold converge", (("cold", "-"),)),
    ("Re-run that changes nothing", (("noop", "-"), ("facts", ":"))),
)


def main(raw_path, png_path):
    with open(raw_path) as handle:
        data = json.load(handle)
    cells = {(c["tool"], c["phase"], c["n"]): c for c in data["summary"]}
    ns = data["ns"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=False)
    for ax, (title, phases) in zip(axes, PANELS):
        for phase, style in phases:
            for tool in ("raw", "rawpar", "podkit", "cdocker"):
                points = [(n, cells[(tool, phase, n)]) for n in ns if (tool, phase, n) in cells]
                if not points:
                    continue
                xs = [n for n, _c in points]
                ys = [c["median"] for _n, c in points]
                err = [[c["median"] - c["min"] for _n, c in points], [c["max"] - c["median"] for _n, c in points]]
                label = LABELS[tool] + (" pod_facts" if phase == "facts" else "")
                ax.errorbar(xs, ys, yerr=err, color=COLOURS[tool], linestyle=style, marker="o", capsize=3, label=label)
                ax.annotate("%.1f s" % ys[-1], (xs[-1], ys[-1]), textcoords="offset points", xytext=(6, -3), fontsize=8,
                            color=COLOURS[tool])
        ax.set_title(title)
        ax.set_xlabel("pods (a sandbox and two members each)")
        ax.set_ylabel("seconds (median, bars: min–max)")
        ax.set_xticks(ns)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    meta = data["meta"]
    reps = sorted({c["reps"] for c in data["summary"]})
    fig.suptitle("podkit against the raw docker CLI and community.docker — %s UTC, %d cores, load %s, %s repetition(s)"
                 % (meta["started"], meta["cores"], meta["load_start"].split()[0],
                    "–".join(str(r) for r in (reps[0], reps[-1]) if reps) if len(reps) > 1 else reps[0] if reps else 0),
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
