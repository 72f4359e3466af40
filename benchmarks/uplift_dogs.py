"""How few sleeping dogs the uplift list could contact, with the best possible knowledge of who they are.

The issue asks the uplift list to contact at most a third of the sleeping dogs today's list
contacts. The learned effects barely tell the dogs on the list from the rest (docs/uplift.md),
so this asks what any model could do: the generator draws each customer's response type from
scores on tenure, segment, digital habit and age with noise (`features.bank.population`), and
`uplift_type_probabilities` gives the chance of each type those traits imply, the most a model of
who responds could know. Run after `python -m benchmarks.uplift --seed S` on the same bank (it
reads that run's cached bank and bundle), then for each cut it re-chooses the uplift list from
the same candidates (the customers it contacts and those it left over capacity), leaving out
those whose planted chance of being a sleeping dog is at or above the cut, fills the same number
of contacts by expected saving, and scores every list by `churn simulate` beside today's list.

    python -m benchmarks.uplift_dogs --seed 20261216

A benchmark, not a product path: it reads `truth/`, which the product never does.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from benchmarks.uplift import DOGS_TARGET, NET_TARGET, ratio, simulate_rows


def dog_chance(listed: pd.DataFrame, customers: pd.DataFrame, truth: pd.DataFrame, start: pd.Timestamp):
    """Each listed customer's planted chance of being a sleeping dog, from their traits at the
    bank's first day (tenure, segment, age from the customers table; the digital habit the bank
    sees only through logins, from `truth/`)."""
    from features.bank.population import UPLIFT_TYPES, uplift_type_probabilities

    ids = listed.index
    joined = pd.to_datetime(customers["join_date"].reindex(ids))
    tenure = np.maximum((start - joined).dt.days.to_numpy() / 365.25, 0.0)
    age = start.year - customers["birth_year"].reindex(ids).to_numpy(dtype=float)
    segment = (customers["segment"].reindex(ids).astype(str) != "mass").to_numpy()
    digital = truth["digital"].reindex(ids).to_numpy(dtype=float)
    chance = uplift_type_probabilities(tenure, segment, digital, age)
    return pd.Series(chance[:, UPLIFT_TYPES.index("sleeping_dog")], index=ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--seeds", type=int, default=5, help="simulated continuations per list")
    parser.add_argument("--capacity-scale", type=float, default=4.0)
    parser.add_argument("--cuts", type=float, nargs="+", default=[0.15, 0.1, 0.07, 0.05])
    args = parser.parse_args(argv)

    from benchmarks.cached import benchmark_bank, refit_uplift
    from features.campaigns import campaign_rows
    from serving.risk_list import build_risk_list, default_as_of

    root, config, tables, bundle = benchmark_bank(parser, args)
    truth = pd.read_parquet(root / "truth" / "customers.parquet").set_index("customer_id")
    start = pd.Timestamp(json.loads((root / "manifest.json").read_text())["start"])
    as_of = default_as_of(tables)

    def simulate(listed: pd.DataFrame) -> dict:
        return simulate_rows(root, listed, config, args.seeds)

    probability, _ = build_risk_list(
        tables, bundle, "bench", as_of, config.with_uplift(ranking="probability")
    )
    today = simulate(probability)
    refit_uplift(bundle, campaign_rows(tables, config), config)
    listed, _ = build_risk_list(tables, bundle, "bench", as_of, config.with_uplift(ranking="uplift"))
    contact = listed["contact"].fillna(False).astype(bool)
    over = listed["contact_rule"].astype(str).str.startswith("over the daily capacity")
    pool = listed[(listed["status"] == "scored") & (contact | over)]
    chance = dog_chance(pool, tables["customers"].set_index("customer_id"), truth, start)
    size = int(contact.sum())

    print(
        f"bank seed {args.seed}, {args.customers:,} customers, list of {as_of:%Y-%m-%d}; ratios against today's list"
    )
    print(f"{'list':44s} {'contacted':>9s} {'net value':>11s} {'x':>6s} {'dogs':>5s} {'x':>6s}")

    def line(name: str, figures: dict) -> None:
        net = ratio(figures["net_value"], today["net_value"])
        dogs = figures["sleeping_dogs_contacted"] / max(today["sleeping_dogs_contacted"], 1)
        met = "both targets" if net >= NET_TARGET and dogs <= DOGS_TARGET else ""
        print(
            f"{name:44s} {figures['contacted']:9,d} {figures['net_value']:11,.0f} {net:6.2f} "
            f"{figures['sleeping_dogs_contacted']:5d} {dogs:6.2f}  {met}",
            flush=True,
        )

    line("probability (today)", today)
    line(f"uplift ({config.uplift.choose} action), as built", simulate(listed))
    for cut in args.cuts:
        kept = pool[chance < cut].sort_values("expected_saving", ascending=False).index[:size]
        line(
            f"  same candidates, planted P(dog) < {cut:g}",
            simulate(listed.assign(contact=listed.index.isin(kept))),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
