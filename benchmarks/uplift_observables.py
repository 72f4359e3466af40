"""What a model of the product's features could make of unlimited randomised evidence.

`benchmarks.uplift_ceiling` shows the best list the simulated bank allows, chosen by a clairvoyant
who sees each customer's saving. The learner sees less: the features the product builds on the
list date. This asks how far a model of those features alone could go were evidence no limit: it
contacts every contactable customer with the playbook's action on `--oracle-seeds` continuations
numbered from `--first-seed` (the training evidence: each contact's chance of saving the
customer, far more than any bank's history holds), fits a LightGBM regression of that chance on
the churn model's features, cross-fitted over customer folds (no customer is ranked by a model
that saw their saving), and builds the list of today's size from the highest positive predicted
net values (predicted saving x value - cost). Every list, today's and the configured uplift list
included, is then valued on another `--oracle-seeds` continuations from `--eval-first-seed`, which
chose nothing (net value and standard error, `benchmarks.uplift_ceiling.expected_net`). Run after
`python -m benchmarks.uplift --seed S`:

    python -m benchmarks.uplift_observables --seed 20261244

A benchmark, not a product path: its evidence is the simulated bank's what-ifs, which no bank has.
The regression is not tuned (its settings were written down before any run), so it is a floor
under what a model of these features could do.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.uplift import NET_TARGET, contactable, ratio
from benchmarks.uplift_ceiling import best_list, expected_net, list_day, with_costs

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


def playbook_savings(
    root: Path, contacts: dict[str, pd.DataFrame], as_of, config, seeds: int, first: int
) -> pd.DataFrame:
    """Each contact's saving on `seeds` continuations from `first` (`contacts`: lists of
    customer_id and action, at most one contact a customer each), kept in the bank's cache folder."""
    from features.bank.simulate import expected_savings

    kept = root / f"savings_playbook_{seeds}_from{first}_{as_of:%Y%m%d}.parquet"
    if kept.exists():
        return pd.read_parquet(kept)
    frames = {name: rows.assign(contact=True, as_of=as_of) for name, rows in contacts.items() if len(rows)}
    savings = expected_savings(root, frames, config, seeds, first).drop(columns=["cost", "net"])
    savings.to_parquet(kept)
    return savings


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
    parser.add_argument("--capacity-scale", type=float, default=4.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    low, high = sorted((args.first_seed, args.eval_first_seed))
    if high < low + args.oracle_seeds:
        parser.error("--first-seed, --eval-first-seed: the two sets of continuations must not overlap")
    if min(args.first_seed, args.eval_first_seed) < 5:
        parser.error("--first-seed, --eval-first-seed: continuations 0 .. 4 are the benchmark's own")

    from benchmarks.cached import benchmark_bank

    root, config, tables, bundle = benchmark_bank(parser, args)
    day = list_day(tables, bundle, config)
    as_of, today, configured, size, features = day.as_of, day.today, day.configured, day.size, day.features
    candidates = contactable(day.everyone)
    candidates = candidates[candidates["action"].notna()]

    lists = {}
    for name, picked in {
        "probability (today)": today,
        f"uplift ({config.uplift.choose} action)": configured,
    }.items():
        contacts = picked[picked["contact"].fillna(False).astype(bool)]
        lists[name] = pd.DataFrame({"customer_id": contacts.index, "action": contacts["action"].astype(str)})
    # every candidate with the playbook's action, and any listed contact with another action
    playbook = pd.DataFrame({"customer_id": candidates.index, "action": candidates["action"].astype(str)})
    listed = pd.concat(lists.values()).drop_duplicates()
    known = pd.MultiIndex.from_frame(playbook)
    other = listed[~pd.MultiIndex.from_frame(listed).isin(known)].drop_duplicates("customer_id")
    contacts = {"playbook": playbook, "listed, other actions": other}

    started = time.perf_counter()
    both = [
        with_costs(playbook_savings(root, contacts, as_of, config, args.oracle_seeds, first), config)
        for first in (args.first_seed, args.eval_first_seed)
    ]
    train, valued = (s[s["list"] == "playbook"] for s in both)
    valued_all = both[1].drop_duplicates(["customer_id", "action"])
    estimated = time.perf_counter() - started

    ids = train["customer_id"].to_numpy()
    x = bundle.matrix(bundle.prepare(features.loc[ids]))
    x = pd.DataFrame(x, columns=bundle.feature_names) if not isinstance(x, pd.DataFrame) else x.copy()
    x["churn_probability"] = candidates.loc[ids, "churn_probability"].to_numpy()
    x["value"] = train["value"].to_numpy()
    started = time.perf_counter()
    predicted = cross_fitted_saving(x, train["saved"].to_numpy(), ids)
    fitted = time.perf_counter() - started
    model_view = train.assign(net=predicted * train["value"] - train["cost"])

    chosen = {
        "best list, clairvoyant (chosen on the evidence)": best_list(train, size),
        "best list, a model of the features": best_list(model_view, size),
    }
    for name, picked in chosen.items():
        lists[name] = picked[["customer_id", "action"]]

    held = valued.set_index("customer_id")["saved"].reindex(ids).to_numpy()
    print(
        f"bank seed {args.seed}, {args.customers:,} customers, list of {as_of:%Y-%m-%d}; {len(candidates):,} "
        f"contactable customers with the playbook's action; evidence on {args.oracle_seeds} continuations "
        f"from #{args.first_seed}, valuation on {args.oracle_seeds} from #{args.eval_first_seed} "
        f"({estimated:.0f} s); regression cross-fitted in {fitted:.0f} s; {len(other)} listed "
        "contact(s) with another action than the playbook's, estimated apart"
    )
    print(
        f"saving: evidence vs valuation correlation {np.corrcoef(train['saved'], held)[0, 1]:.3f}, "
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
                "evidence_first": args.first_seed,
                "valuation_first": args.eval_first_seed,
            },
            "lists": out,
        }
        args.json.write_text(json.dumps(summary, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
