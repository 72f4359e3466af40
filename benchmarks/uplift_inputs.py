"""What the effect models should read: the cross-fitted Qini of any contact for several scores.

The headline Qini (`training/uplift.py`) ranks every campaign row by models fitted on the other
four folds of customers. This ranks the same rows the same way by five scores, so the inputs of
the effect models can be compared on one bank's history:

- `features`: the R-learner on the standardised features (`uplift.effect_input: features`, the
  default until 2026-12-06; it reproduces that headline);
- `take_up`: the R-learner on the take-up score's log-odds alone (`effect_input: take_up`, the
  default since), each training row's score from a take-up model fitted on the other half of its
  customers;
- `take_up, then features`: the take-up effect first, the features' ridge effect on top of it;
- `churn risk alone`: the outcome model's P(churn), no effect model at all;
- `take-up score alone`: P(offer accepted | reached), no effect model at all.

Run after `python -m benchmarks.uplift --seed S` on the same bank (it reads that run's cached bank
and bundle; the bundle supplies only the feature preparation):

    python -m benchmarks.uplift_inputs --seed 20261224

A design aid: decide on a bank, then claim only from fresh banks with the rule written first.
"""

from __future__ import annotations

import argparse

import numpy as np

SCORES = ("features", "take_up", "take_up, then features", "churn risk alone", "take-up score alone")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261224)
    parser.add_argument("--capacity-scale", type=float, default=4.0)
    args = parser.parse_args(argv)

    from benchmarks.cached import benchmark_bank
    from features.campaigns import CONTROL, campaign_rows
    from serving.uplift_model import apply_effect, effect_basis
    from training.uplift_boosters import outcome_model, take_up_basis, take_up_model
    from training.uplift_effects import basis_spec, fit_effect
    from training.uplift_eval import (
        CROSS_FOLDS,
        cluster_interval,
        customer_folds,
        design_weights,
        propensity,
        qini,
        randomised_groups,
        within_fold_rank,
    )

    root, config, tables, bundle = benchmark_bank(parser, args)
    u, seed = config.uplift, config.training.seed
    rows = campaign_rows(tables, config)
    x = bundle.matrix(bundle.prepare(rows[bundle.feature_names]))
    dtypes = bundle.meta["features"]["dtypes"]
    categorical = [j for j, name in enumerate(bundle.feature_names) if dtypes[name] == "category"]
    index = {name: j for j, name in enumerate(bundle.feature_names)}
    y, arm = rows["churn"].to_numpy().astype(int), rows["arm"].to_numpy()
    group, targeted = randomised_groups(rows, u.exploration_campaigns)
    with_selection = np.column_stack([x, targeted.astype(float)])
    fold, treated = customer_folds(rows["customer_id"]), arm != CONTROL

    scores = {name: np.zeros(len(rows)) for name in SCORES}
    for k in range(CROSS_FOLDS):
        test, train = fold == k, np.flatnonzero(fold != k)
        m, outcome = outcome_model(with_selection[train], y[train], u.params, seed, categorical)
        contacted = treated[train]
        e = propensity(contacted, group[train])
        spec = basis_spec(x[train], bundle.feature_names, categorical)
        by_features = fit_effect(effect_basis(x[train], spec, index), y[train], contacted, e, m)
        take_up, _ = take_up_model(rows.iloc[train], x[train], u, seed, categorical)
        basis = take_up_basis(rows.iloc[train], x[train], u, seed, categorical)
        if take_up is None or basis is None:
            parser.error("too few recorded offer outcomes for a take-up model on this bank")
        take_up_spec, z_take_up = basis
        by_take_up = fit_effect(z_take_up, y[train], contacted, e, m)
        on_top = fit_effect(
            effect_basis(x[train], spec, index),
            y[train],
            contacted,
            e,
            m,
            init=apply_effect(z_take_up, by_take_up),
        )
        risk = np.mean([b.predict(with_selection[test]) for b in outcome], axis=0)
        chance = take_up.predict(x[test])
        z_features = effect_basis(x[test], spec, index)
        z_test = effect_basis(x[test], take_up_spec, index, chance)
        raw = {
            "features": -risk * apply_effect(z_features, by_features),
            "take_up": -risk * apply_effect(z_test, by_take_up),
            "take_up, then features": -risk
            * (apply_effect(z_test, by_take_up) + apply_effect(z_features, on_top)),
            "churn risk alone": risk,
            "take-up score alone": chance,
        }
        for name, score in raw.items():
            scores[name][test] = within_fold_rank(score)
        print(f"fold {k + 1} of {CROSS_FOLDS} ranked", flush=True)

    weight, churned = design_weights(treated, group), y.astype(bool)
    customers = rows["customer_id"].to_numpy()
    print(
        f"\nbank seed {args.seed}: {len(rows):,} campaign rows; cross-fitted Qini of any contact (95% interval)"
    )
    for name, score in scores.items():
        value = qini(score, treated, churned, weight)[1]
        low, high = cluster_interval(score, treated, churned, weight, customers, u.bootstrap, seed)
        print(f"  {name:26s} {value:8.4f}   ({low:.4f} .. {high:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
