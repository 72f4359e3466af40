"""`make bench-uplift` over several banks: how often the uplift list meets its targets.

One bank's net value rests on a few dozen saved customers, so one run says little. Run the
benchmark on several fresh seeds with `--json`, then put the runs side by side:

    for s in 20261210 20261211 20261212; do
        python -m benchmarks.uplift --seed $s --json bench-$s.json
    done
    python -m benchmarks.uplift_banks bench-*.json

Prints, per bank, the configured uplift list's ratios against the probability and random lists,
its sleeping dogs against the probability list's, the cross-fitted held-out Qini with its interval
and a perfect score's, and which targets each bank meets; then how many banks meet each target and
the median of each ratio. Everything is computed from the lists' simulated figures in the files,
so runs written before the files carried their verdicts read the same way. `net x` is the
benchmark's few continuations of `churn simulate`; `expected` the same ratio in expectation, on
many more continuations contact by contact (runs since 2026-12-06; `benchmarks.uplift_ceiling.
in_expectation`), which the net-value target reads where a run has it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from benchmarks.uplift import DOGS_TARGET, NET_TARGET, RANDOM_TARGET, ratio

CONFIGURED = "uplift, playbook action"  # the default `uplift.choose: playbook`, for older files


def bank_row(path: Path) -> dict:
    """One run's figures, computed from its lists and metrics."""
    run = json.loads(path.read_text())
    bank = run.get("bank", {})
    lists, metrics = run["lists"], run["metrics"]
    uplift = lists[bank.get("configured", CONFIGURED)]
    probability, random = lists["probability"], lists["random"]
    return {
        "bank": f"{bank['seed']}" if "seed" in bank else path.stem,
        "exploration": bank.get("exploration_share"),
        "contacted": (uplift["contacted"], probability["contacted"]),
        "net": ratio(uplift["net_value"], probability["net_value"]),
        # in expectation, on many more continuations contact by contact (runs since 2026-12-06)
        "net_expected": (run.get("expected") or {}).get("ratio"),
        "random": ratio(uplift["net_value"], random["net_value"]),
        "dogs": uplift["sleeping_dogs_contacted"] / max(probability["sleeping_dogs_contacted"], 1),
        "qini": (metrics.get("uplift_qini"), metrics.get("uplift_qini_low"), metrics.get("uplift_qini_high")),
        "perfect": metrics.get("perfect_qini"),
        # runs before 2026-12-06's adjusted headline hold the unadjusted figure as `uplift_qini`
        "adjusted": "uplift_qini_unadjusted" in metrics,
    }


def verdicts(row: dict) -> dict[str, bool]:
    """The issue's four targets for one bank."""
    low = row["qini"][1]
    net = row["net"] if row.get("net_expected") is None else row["net_expected"]
    return {
        f"net >= {NET_TARGET:g}x": net >= NET_TARGET,
        f"random >= {RANDOM_TARGET:g}x": row["random"] >= RANDOM_TARGET,
        "dogs <= 1/3": row["dogs"] <= DOGS_TARGET,
        "Qini above 0": low is not None and low > 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="files written by `benchmarks.uplift --json`")
    args = parser.parse_args(argv)
    rows = [bank_row(path) for path in args.runs]

    def number(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    print(
        f"{'bank':>10s} {'explore':>8s} {'contacted':>13s} {'net x':>7s} {'expected':>9s} {'x random':>9s} {'dogs x':>7s} "
        f"{'Qini (95% interval)':>28s} {'perfect':>8s}  targets met"
    )
    for row in rows:
        qini, low, high = row["qini"]
        met = [name for name, ok in verdicts(row).items() if ok]
        interval = (
            "-" if qini is None else f"{qini:.4f} ({low:.4f} .. {high:.4f}){'' if row['adjusted'] else '*'}"
        )
        print(
            f"{row['bank']:>10s} {number(row['exploration'], '.0%'):>8s} "
            f"{row['contacted'][0]:>6,d}/{row['contacted'][1]:<6,d} {row['net']:7.2f} "
            f"{number(row['net_expected'], '9.2f'):>9s} {row['random']:9.2f} "
            f"{row['dogs']:7.2f} {interval:>28s} {number(row['perfect'], '.4f'):>8s}  "
            f"{len(met)}/4 {', '.join(met)}"
        )
    if not all(row["adjusted"] for row in rows):
        print("* not adjusted for risk: a run from before the headline Qini was (docs/uplift-benchmarks.md)")
    print(f"\n{len(rows)} bank(s); banks meeting each target:")
    for name in verdicts(rows[0]):
        print(f"  {name:14s} {sum(verdicts(row)[name] for row in rows)} of {len(rows)}")
    keys = (
        ("net", "net_expected", "dogs")
        if all(r["net_expected"] is not None for r in rows)
        else ("net", "dogs")
    )
    print("medians: " + ", ".join(f"{k} {statistics.median(r[k] for r in rows):.2f}x" for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
