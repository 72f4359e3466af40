"""Effect-model variants on one bank, side by side (a design aid for `uplift.effect_families`).

Trains (or reads the cached) churn bundle of a generated bank once, builds the campaign rows once,
then for each variant refits only the uplift models and scores the uplift lists with `churn
simulate`, beside the probability list and a random one of the same size. Use it on a design bank;
claim results only from `make bench-uplift` on a bank no variant was chosen on.

    python -m benchmarks.uplift_variants --seed 20261202 --variant all= \\
        --variant who=profile,engagement,products,contacts
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from benchmarks.uplift import CACHE, _random_list, _scaled, simulate_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--seeds", type=int, default=3, help="simulated continuations per list")
    parser.add_argument("--capacity-scale", type=float, default=4.0)
    parser.add_argument(
        "--variant", action="append", required=True, help="NAME=family,family (empty: every feature)"
    )
    parser.add_argument(
        "--take-up-floor",
        type=float,
        help="the lists' take-up floor [config: uplift.take_up_floor]; the README's family figures "
        "predate the floor: 0 reproduces them",
    )
    args = parser.parse_args(argv)

    from benchmarks.cached import bundle_name, cached_bank, cached_bundle, refit_uplift
    from churn.config import load_config
    from features.campaigns import campaign_rows
    from serving.risk_list import build_risk_list, default_as_of

    root = CACHE / f"uplift_{args.customers}_seed{args.seed}"
    config = _scaled(load_config(environ={"CHURN_DATA_SOURCE": str(root)}), args.capacity_scale)
    tables = cached_bank(root, args.customers, args.seed, config)
    bundle, _ = cached_bundle(root, tables, config, False, ("uplift", "roc_auc"), bundle_name(config))
    as_of = default_as_of(tables)
    rows = campaign_rows(tables, config)
    truth = pd.read_parquet(root / "truth" / "customers.parquet").set_index("customer_id")

    def simulate(listed: pd.DataFrame) -> dict:
        return simulate_rows(root, listed, config, args.seeds)

    def ranked(mode: str, choose: str, families: tuple[str, ...]):
        # families are what effect models on the features read (the take-up input reads none)
        floor = {} if args.take_up_floor is None else {"take_up_floor": args.take_up_floor}
        return config.with_uplift(
            ranking=mode, choose=choose, effect_families=families, effect_input="features", **floor
        )

    probability, _ = build_risk_list(tables, bundle, "bench", as_of, ranked("probability", "best", ()))
    size = int(probability["contact"].fillna(False).astype(bool).sum())
    base = {
        "probability": simulate(probability),
        "random": simulate(_random_list(probability, size, args.seed)),
    }
    for name, figures in base.items():
        print(
            f"{name:<28} net {figures['net_value']:>10,.0f}  dogs {figures['sleeping_dogs_contacted']:>5}  contacted {figures['contacted']}"
        )
    for variant in args.variant:
        name, _, spec = variant.partition("=")
        families = tuple(f for f in spec.split(",") if f)
        started = time.perf_counter()
        learned = refit_uplift(bundle, rows, ranked("uplift", "best", families))
        m = learned.metrics
        line = f"{name:<12} Qini {m.get('uplift_qini', float('nan')):.4f} [{m.get('uplift_qini_low', float('nan')):.4f} .. {m.get('uplift_qini_high', float('nan')):.4f}]"
        for choose in ("best", "playbook"):
            listed, _ = build_risk_list(tables, bundle, "bench", as_of, ranked("uplift", choose, families))
            figures = simulate(listed)
            scored = listed[(listed["status"] == "scored") & listed["uplift"].notna()].join(
                truth[["uplift_type"]]
            )
            by_type = (100 * scored.groupby("uplift_type", observed=True)["uplift"].mean()).round(2).to_dict()
            line += (
                f"\n   {choose:<9} net {figures['net_value']:>10,.0f} ({figures['net_value'] / base['probability']['net_value']:.2f}x)"
                f"  dogs {figures['sleeping_dogs_contacted']:>4} ({figures['sleeping_dogs_contacted'] / max(base['probability']['sleeping_dogs_contacted'], 1):.2f}x)"
                f"  contacted {figures['contacted']:>5}  uplift by type {by_type}"
            )
        print(line + f"\n   ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
