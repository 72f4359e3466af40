"""How much noise the regression adjustment takes off the cross-fitted Qini, and whether it moves it.

The Qini (`training/uplift.py`) compares, at each cut of the ranking, the churn of the contacted
with the churn of the controls. The headline (`uplift_qini`) takes each row's risk (the
outcome model's, fitted without the row's customer) off its outcome first. This measures, on one
bank's history, for the learned ranking and for a perfect one (the planted response types):

- both figures with their intervals (resampling whole customers, as training does);
- placebo: the treatment flags shuffled inside each randomised group (`--placebo` times, the
  design weights recomputed), so no ranking can find anything; the mean of each figure over the
  shuffles should be about 0 (no bias) and their spread is each figure's own noise; on the first
  `--coverage` shuffles, each figure's interval as training computes it, which should contain 0
  on about 95% of them (an interval narrower than the figure's noise would not);
- balance: whether the real assignment looks like a shuffle, where the adjustment could matter
  most: adjusted minus plain for each score, and the contacted's weighted mean risk minus the
  controls', each against its spread over the shuffles (a z far from 0 on many banks would mean
  the groups are not balanced on foreseeable risk, and the two figures estimate different things).

Run after `python -m benchmarks.uplift --seed S` on the same bank (it reads that run's cached bank
and bundle and refits the uplift models on its campaign rows):

    python -m benchmarks.qini_noise --seed 20261238
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd


def _shuffled(treated: np.ndarray, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The treatment flags permuted inside each randomised group: the same design, no effect."""
    codes = np.unique(group, return_inverse=True)[1]
    order = np.argsort(codes, kind="stable")
    out = treated.copy()
    for members in np.split(order, np.flatnonzero(np.diff(codes[order])) + 1):
        out[members] = treated[rng.permutation(members)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261238)
    parser.add_argument("--capacity-scale", type=float, default=4.0)
    parser.add_argument("--placebo", type=int, default=200, help="treatment shuffles")
    parser.add_argument("--coverage", type=int, default=100, help="shuffles whose intervals are checked")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from benchmarks.cached import benchmark_bank
    from benchmarks.uplift_perfect import perfect_score
    from features.campaigns import campaign_rows
    from training.uplift import fit_uplift
    from training.uplift_eval import cluster_interval, design_weights, qini

    root, config, tables, bundle = benchmark_bank(parser, args)
    learned = fit_uplift(campaign_rows(tables, config), bundle, config)
    rows = learned.cross_fit
    if rows is None:
        parser.error("too few treated or control rows for the cross-fitted Qini on this bank")
    truth = pd.read_parquet(root / "truth" / "customers.parquet").set_index("customer_id")
    perfect = perfect_score(truth, rows["customer_id"])

    treated, churn, weight = rows["treated"].to_numpy(), rows["churn"].to_numpy(), rows["weight"].to_numpy()
    risk, group, customers = rows["risk"].to_numpy(), rows["group"].to_numpy(), rows["customer_id"].to_numpy()
    reps, seed = config.uplift.bootstrap, config.training.seed
    report: dict = {"seed": args.seed, "rows": len(rows), "scores": {}}
    print(
        f"bank seed {args.seed}: {len(rows):,} campaign rows, cross-fitted Qini of any contact (95% interval)"
    )
    for name, score in (("learned", rows["score"].to_numpy()), ("perfect", perfect)):
        figures = {}
        for label, baseline in (("plain", None), ("adjusted", risk)):
            value = qini(score, treated, churn, weight, baseline=baseline)[1]
            low, high = cluster_interval(score, treated, churn, weight, customers, reps, seed, baseline)
            figures[label] = {"qini": value, "low": low, "high": high}
            print(f"  {name:8s} {label:9s} {value:8.4f}  ({low:.4f} .. {high:.4f})  width {high - low:.4f}")
        report["scores"][name] = figures

    rng = np.random.default_rng(seed)
    placebo: dict[str, list[float]] = {"plain": [], "adjusted": []}
    covered = {"plain": 0, "adjusted": 0}
    score = rows["score"].to_numpy()
    explore = pd.Series(group).str.startswith("explore").to_numpy()
    scores = {"learned": score, "perfect": perfect}

    def balance(t: np.ndarray, w: np.ndarray) -> dict[str, float]:
        """Where the adjustment moves a figure: per score, adjusted minus plain; and the weighted
        mean risk of the contacted minus the controls', in the targeted campaigns and the
        exploration. A randomised assignment makes each a draw from the shuffles' spread."""
        out = {
            f"{name} adjusted - plain": qini(v, t, churn, w, baseline=risk)[1] - qini(v, t, churn, w)[1]
            for name, v in scores.items()
        }
        for part, mask in (("campaigns", ~explore), ("exploration", explore)):
            on, off = mask & t, mask & ~t
            out[f"risk gap, {part}"] = float(
                np.average(risk[on], weights=w[on]) - np.average(risk[off], weights=w[off])
            )
        return out

    real_balance, shuffled_balance = balance(treated, weight), []
    for i in range(args.placebo):
        fake = _shuffled(treated, group, rng)
        fake_weight = design_weights(fake, group)
        shuffled_balance.append(balance(fake, fake_weight))
        for label, baseline in (("plain", None), ("adjusted", risk)):
            placebo[label].append(qini(score, fake, churn, fake_weight, baseline=baseline)[1])
            if i < args.coverage:
                low, high = cluster_interval(
                    score, fake, churn, fake_weight, customers, reps, seed + i, baseline
                )
                covered[label] += int(low <= 0 <= high)
    sd = {label: float(np.std(draws)) for label, draws in placebo.items()}
    checked = min(args.coverage, args.placebo)
    report["placebo"] = {
        label: {"mean": float(np.mean(d)), "sd": sd[label], "covered": covered[label], "checked": checked}
        for label, d in placebo.items()
    }
    report["placebo"]["sd_ratio"] = sd["adjusted"] / sd["plain"]
    print(
        f"placebo ({args.placebo} shuffles of the treatment inside each randomised group, learned ranking):"
    )
    for label, draws in placebo.items():
        print(
            f"  {label:9s} mean {np.mean(draws):8.5f}  sd {sd[label]:.5f}  "
            f"interval contains 0 on {covered[label]} of {checked}"
        )
    print(f"  sd adjusted / plain  {sd['adjusted'] / sd['plain']:.3f}")
    print("is the real assignment like a shuffle? (real figure, and its z against the shuffles)")
    report["balance"] = {}
    for key, value in real_balance.items():
        draws = np.array([b[key] for b in shuffled_balance])
        z = (value - draws.mean()) / draws.std() if draws.std() > 0 else float("nan")
        report["balance"][key] = {"real": value, "shuffled_mean": float(draws.mean()), "z": float(z)}
        print(f"  {key:32s} {value:9.5f}   z {z:6.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
