"""What a model of the product's features could make of the simulated bank's evidence: a saving for every customer, or one randomised test.

`benchmarks.uplift_ceiling` shows the best list the simulated bank allows, chosen by a clairvoyant
who sees each customer's saving. The learner sees less: the features the product builds on the
list date. This asks how far a model of those features alone could go with more evidence than any
bank's history holds: it contacts every contactable customer with the playbook's action on
`--evidence-seeds` continuations numbered from `--first-seed` (each contact's chance of saving the
customer, both outcomes seen), fits a LightGBM regression of that chance on the churn model's
features, the churn probability and the value, cross-fitted over customer folds (no customer is
ranked by a model fitted on their own evidence), and builds the list of today's size from the
highest positive predicted net values (predicted saving x value - cost), once however the contacts
fall on the teams and once within the contact policy and the teams' capacities, as the product's
lists are decided (`benchmarks.uplift_ceiling.best_list_within`; the comparison at the same
capacity). Every list, today's and
the configured uplift list included, is then valued on `--oracle-seeds` other continuations from
`--eval-first-seed`, which chose nothing (net value and standard error,
`benchmarks.uplift_ceiling.expected_net`). Run after `python -m benchmarks.uplift --seed S`:

    python -m benchmarks.uplift_observables --seed 20261244
    python -m benchmarks.uplift_observables --seed 20261244 --evidence-seeds 1 --first-seed 3000 \
        --evidence randomised-baseline

`--evidence randomised` gives the regression only what a randomised test of every candidate would
show (one arm per customer, by a fair coin), and `randomised-baseline` that less a baseline from
the features (`learned_from`).

A benchmark, not a product path: its evidence comes from the simulated bank's continuations, which
no bank has. The regression is not tuned (its settings were written down before any run), so it is
a floor under what a model of these features could do with that evidence.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.uplift import NET_TARGET, ratio
from benchmarks.uplift_ceiling import (
    best_list,
    best_list_within,
    cached_savings,
    contacts_of,
    expected_net,
    list_day,
    playbook_frames,
    with_costs,
)

# fixed before the first run, not tuned: a regression of a small, noisy signal
PARAMS = {
    "objective": "regression",
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 400,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "verbose": -1,
    "num_threads": 2,
}
ROUNDS = 300


def cross_fitted_saving(
    x: pd.DataFrame, saved: np.ndarray, customer_id: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Each customer's predicted chance of being saved, from a regression fitted on the other
    customer folds (`training.uplift_eval.customer_folds`)."""
    import lightgbm as lgb

    from training.uplift_eval import customer_folds

    folds = customer_folds(customer_id)
    out = np.full(len(x), np.nan)
    for k in np.unique(folds):
        held = folds == k
        model = lgb.train(
            PARAMS | {"seed": seed}, lgb.Dataset(x[~held], saved[~held]), num_boost_round=ROUNDS
        )
        out[held] = model.predict(x[held])
    return out


def learned_from(
    evidence: pd.DataFrame, kind: str, seed: int, x: pd.DataFrame, ids: np.ndarray
) -> np.ndarray:
    """What the regression learns each customer's saving from. `what-ifs`: the saving itself (the
    simulated bank shows both outcomes). `randomised`: what a randomised test of every customer
    would show, a fair coin contacting each or not, and only that arm's outcome seen; its
    transformed outcome (2 x lost for the customers not contacted, -2 x lost with the contact for
    the others) has the saving as its expectation, and far more noise. `randomised-baseline`: the
    same test, each outcome less a cross-fitted regression of the outcomes seen on the features
    (a baseline the customer's own coin does not move, so the expectation stays the saving, with
    less noise, as the product's R-learner and adjusted Qini do). The baseline is fitted on the
    other folds, which the final regression's training targets then carry: a customer's outcome
    reaches their own prediction only through other customers' baselines, averaged over their
    coins (as in double machine learning without nesting)."""
    if kind == "what-ifs":
        return evidence["saved"].to_numpy()
    contacted = np.random.default_rng(seed).random(len(evidence)) < 0.5
    lost_without = evidence["lost"].to_numpy()
    lost_with = lost_without - evidence["saved"].to_numpy()
    seen = np.where(contacted, lost_with, lost_without)
    baseline = cross_fitted_saving(x, seen, ids, seed) if kind == "randomised-baseline" else 0.0
    return np.where(contacted, -2.0, 2.0) * (seen - baseline)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--oracle-seeds", type=int, default=60, help="continuations per set of estimates")
    parser.add_argument(
        "--first-seed", type=int, default=1000, help="the training evidence's first continuation"
    )
    parser.add_argument(
        "--eval-first-seed", type=int, default=2000, help="the valuation's first continuation"
    )
    parser.add_argument(
        "--evidence-seeds",
        type=int,
        help="continuations the regression learns from (default --oracle-seeds): less evidence, to see how much it needs",
    )
    parser.add_argument(
        "--evidence",
        choices=("what-ifs", "randomised", "randomised-baseline"),
        default="what-ifs",
        help="what the regression learns from: each customer's saving (both outcomes, with and "
        "without the contact), or one arm of a fair coin per customer (the outcome a randomised "
        "test shows), less a baseline from the features",
    )
    parser.add_argument("--capacity-scale", type=float, default=4.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.evidence_seeds is None:
        args.evidence_seeds = args.oracle_seeds
    if min(args.evidence_seeds, args.oracle_seeds) < 1:
        parser.error("--evidence-seeds, --oracle-seeds: at least 1")
    spans = sorted([(args.first_seed, args.evidence_seeds), (args.eval_first_seed, args.oracle_seeds)])
    if spans[1][0] < spans[0][0] + spans[0][1]:
        parser.error("--first-seed, --eval-first-seed: the two sets of continuations must not overlap")
    if min(args.first_seed, args.eval_first_seed) < 5:
        parser.error("--first-seed, --eval-first-seed: continuations 0 .. 4 are the benchmark's own")

    from benchmarks.cached import benchmark_bank

    root, config, tables, bundle = benchmark_bank(parser, args)
    day = list_day(tables, bundle, config)
    as_of, today, configured, size, features = day.as_of, day.today, day.configured, day.size, day.features
    lists = {
        "probability (today)": contacts_of(today),
        f"uplift ({config.uplift.choose} action)": contacts_of(configured),
    }
    # every candidate with the playbook's action, and any listed contact with another action
    candidates, frames = playbook_frames(day, lists)

    started = time.perf_counter()
    both = [
        with_costs(cached_savings(root, "playbook", frames, config, seeds, first), config)
        for seeds, first in (
            (args.evidence_seeds, args.first_seed),
            (args.oracle_seeds, args.eval_first_seed),
        )
    ]
    train, valued = (s[s["list"] == "playbook"] for s in both)
    valued_all = both[1].drop_duplicates(["customer_id", "action"])
    estimated = time.perf_counter() - started

    ids = train["customer_id"].to_numpy()
    x = pd.DataFrame(bundle.matrix(bundle.prepare(features.loc[ids])), columns=bundle.feature_names)
    x["churn_probability"] = candidates.loc[ids, "churn_probability"].to_numpy()
    x["value"] = train["value"].to_numpy()
    started = time.perf_counter()
    predicted = cross_fitted_saving(x, learned_from(train, args.evidence, args.first_seed, x, ids), ids)
    fitted = time.perf_counter() - started
    model_view = train.assign(net=predicted * train["value"] - train["cost"])

    chosen = {
        "best list, clairvoyant (chosen on the evidence)": best_list(train, size),
        "best list, a model of the features": best_list(model_view, size),
        "clairvoyant, within the capacities": best_list_within(train, size, candidates, config),
        "a model of the features, within the capacities": best_list_within(
            model_view, size, candidates, config
        ),
    }
    for name, picked in chosen.items():
        lists[name] = picked[["customer_id", "action"]]

    held = valued.set_index("customer_id")["saved"].reindex(ids).to_numpy()
    print(
        f"bank seed {args.seed}, {args.customers:,} customers, list of {as_of:%Y-%m-%d}; {len(candidates):,} "
        f"contactable customers with the playbook's action; evidence ({args.evidence}) on {args.evidence_seeds} continuations "
        f"from #{args.first_seed}, valuation on {args.oracle_seeds} from #{args.eval_first_seed} "
        f"({estimated:.0f} s); regression cross-fitted in {fitted:.0f} s; {len(frames.get('listed, other actions', ()))} listed "
        "contact(s) with another action than the playbook's, estimated apart"
    )
    print(
        f"saving: the evidence's what-ifs vs valuation correlation {np.corrcoef(train['saved'], held)[0, 1]:.3f}, "
        f"cross-fitted prediction vs valuation {np.corrcoef(predicted, held)[0, 1]:.3f}"
    )
    print(f"{'list':50s} {'contacted':>9s} {'net value (se)':>22s} {'x today':>8s}")
    out = {}
    for name, contacts in lists.items():
        net, se = expected_net(valued_all, contacts, args.oracle_seeds)
        out[name] = {"contacted": len(contacts), "net_value": net, "net_value_se": se}
    base = out["probability (today)"]["net_value"]
    for name, f in out.items():
        f["net_x_today"] = ratio(f["net_value"], base)
        print(
            f"{name:50s} {f['contacted']:9,d} {f['net_value']:>12,.0f} ({f['net_value_se']:>7,.0f}) "
            f"{f['net_x_today']:8.2f}"
        )
    print(f"(the issue's target for the uplift list: net value >= {NET_TARGET:g}x today's)")
    if args.json:
        summary = {
            "bank": {"customers": args.customers, "seed": args.seed},
            "continuations": {
                "seeds": args.oracle_seeds,
                "evidence_seeds": args.evidence_seeds,
                "evidence": args.evidence,
                "evidence_first": args.first_seed,
                "valuation_first": args.eval_first_seed,
            },
            "lists": out,
        }
        args.json.write_text(json.dumps(summary, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
