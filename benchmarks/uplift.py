"""What works: the uplift-ranked list against today's ranking and a random list, by simulation.

Run with `make bench-uplift`. Generates a fresh bank (100,000 customers by default, a seed no
tuning used), trains the models on its history as `churn train` does (the uplift models learn from
its randomised campaigns), and builds the list at the day after its last month-end at the same
team capacities: ranked by learned uplift with each customer's best action (`uplift`) and with
the playbook's action (`uplift, playbook action`); by P(churn) x value x the playbook's effect
(`probability`, today's ranking); the uplift list's wider pool (customers below the reporting
threshold whose best action saves `uplift.candidate_saving`) ranked with the playbook's effects,
to tell what the learned effects add from what the pool adds; a random list of as many contacts as
the probability list; and a reference with the planted response types known. Each list is scored
by `churn simulate` (the bank continued with and without its contacts on common random numbers,
`--seeds` times). Prints saved customers, value saved, cost, net value and sleeping dogs
contacted side by side, the ratios of the configured uplift list (`uplift.choose`) against the
targets (>= 1.5x the probability list's net value and >= 3x the random list's; at most a third of
its sleeping dogs), and the held-out Qini coefficient with its interval. Five continuations move
the net-value ratio by as much as 1x, so today's list and the configured list are also valued on
`--value-seeds` more continuations contact by contact (`benchmarks.uplift_ceiling.in_expectation`),
and the net-value target reads that ratio, with its standard error. `--json FILE` writes the
bank's settings, every list's figures, the verdicts and the metrics; `benchmarks.uplift_banks`
puts several banks' files side by side (one bank's net value rests on a few dozen customers).
`--exploration-share` generates the bank with another test-and-learn share (docs/uplift.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

CACHE = Path(__file__).resolve().parent / ".cache"
# the targets for the uplift list: its net value against the probability list's and the
# random list's, and its sleeping dogs against the probability list's (the Qini's: above zero)
NET_TARGET, RANDOM_TARGET, DOGS_TARGET = 1.5, 3.0, 1 / 3


def ratio(a: float, b: float) -> float:
    """a / b where b is positive; where b loses money, a list that makes money is infinitely
    better (inf) and one that loses money too has no meaningful ratio (nan)."""
    return a / b if b > 0 else float("inf") if a > 0 else float("nan")


def simulate_rows(root: Path, rows: pd.DataFrame, config, seeds: int) -> dict:
    """A list's rows (`build_risk_list`'s, or `as_list`'s) scored by `churn simulate` on the bank
    in `root`: rows without the contact flag set are not contacted."""
    from features.bank.simulate import simulate_with_config

    frame = rows.reset_index()[["customer_id", "action", "contact", "as_of"]]
    frame["contact"] = frame["contact"].fillna(False).astype(bool)
    return simulate_with_config(root, frame, config, seeds)


def _scaled(config, factor: float):
    """The config with every team's capacity multiplied by `factor` (a bank this size has more staff)."""
    playbook = config.playbook
    capacity = {k: max(1, int(round(v * factor))) for k, v in playbook.capacity.items()}
    per_branch = {k: max(1, int(round(v * factor))) for k, v in playbook.per_branch.items()}
    return config.model_copy(
        update={"playbook": playbook.model_copy(update={"capacity": capacity, "per_branch": per_branch})}
    )


def contactable(rows: pd.DataFrame) -> pd.DataFrame:
    """The scored rows a list may contact: not in the control group, not do-not-contact."""
    scored = rows[(rows["status"] == "scored") & ~rows["control_group"].eq(True)]
    return scored[~scored["do_not_contact"].eq(True)]


def as_list(rows: pd.DataFrame, picked: pd.Index) -> pd.DataFrame:
    """The rows as a list for `churn simulate`: the rows' actions, contact where picked."""
    out = rows[["as_of"]].copy()
    out["action"] = rows["action"].fillna("retention_call")
    out["contact"] = rows.index.isin(picked)
    return out


def _random_list(rows: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    scored = contactable(rows)
    return as_list(rows, scored.sample(n=min(size, len(scored)), random_state=seed).index)


def _informed_list(rows: pd.DataFrame, truth: pd.DataFrame, size: int) -> pd.DataFrame:
    """A reference, not a product list: today's ranking with the planted response types known. The
    `size` persuadable customers with the highest expected saving get the playbook's action; no
    sure thing, lost cause or sleeping dog is contacted. What perfect knowledge of who responds is
    worth on this bank, at the same capacity and with the same action rule."""
    scored = contactable(rows)
    scored = scored[truth["uplift_type"].reindex(scored.index).astype(str).eq("persuadable")]
    return as_list(rows, scored.sort_values("expected_saving", ascending=False).head(size).index)


def playbook_effects(model):
    """The uplift models with no weight on what they learned: every action's uplift is the
    playbook's P(churn) x effect (`serving.uplift_model.UpliftModel.uplift`)."""
    import copy

    from serving.uplift_model import UpliftModel

    meta = copy.deepcopy(model.meta)
    meta["learned_share"] = {action: 0.0 for action in meta["actions"]}
    return UpliftModel(meta, model.take_up_model, model.held_out_take_up_model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261203)  # 20261202 decided generator v6
    parser.add_argument("--seeds", type=int, default=5, help="simulated continuations per list")
    parser.add_argument("--capacity-scale", type=float, default=4.0, help="team capacities x this")
    parser.add_argument(
        "--value-seeds",
        type=int,
        default=60,
        help="continuations today's and the configured list are also valued on, contact by contact, "
        "for their net value in expectation (0: skip)",
    )
    parser.add_argument("--value-first-seed", type=int, default=2000, help="the first of those continuations")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument(
        "--effect-penalty", choices=["ridge", "lasso"], help="the uplift effect models' [config: uplift]"
    )
    parser.add_argument(
        "--effect-families",
        help="comma-separated feature families the effect models read [config: uplift.effect_families]",
    )
    parser.add_argument(
        "--candidate-saving",
        help="the uplift list's pool below the reporting threshold, or 'none' [config: uplift.candidate_saving]",
    )
    parser.add_argument(
        "--exploration-share",
        type=float,
        help="the generated bank's monthly test-and-learn draw, a share of the book "
        "[config: generator.exploration_share]: how much randomised history the uplift models get",
    )
    parser.add_argument(
        "--take-up-floor",
        type=float,
        help="leave the customers at risk with the lowest this share of predicted take-up "
        "uncontacted [config: uplift.take_up_floor]",
    )
    parser.add_argument(
        "--take-up-weight",
        type=float,
        help="weigh each contact's saving by (take-up / the median at risk) ** this "
        "[config: uplift.take_up_weight]",
    )
    parser.add_argument(
        "--effect-input",
        choices=["features", "take_up"],
        help="what the effect models read [config: uplift.effect_input]; each input trains a "
        "bundle of its own on the same cached bank",
    )
    parser.add_argument(
        "--playbook-effect",
        choices=["auto", "pooled", "per_action"],
        help="what values the playbook's action [config: uplift.playbook_effect]; no retraining",
    )
    args = parser.parse_args(argv)
    if args.value_seeds < 0 or (args.value_seeds and args.value_first_seed < args.seeds):
        parser.error(
            "--value-seeds, --value-first-seed: at least 0, and clear of continuations 0 .. --seeds - 1"
        )

    from benchmarks.cached import bundle_name, cached_bank, cached_bundle, cached_cross_fit
    from churn.config import load_config
    from serving.actions import playbook_effect_mode, take_up_floor_state
    from serving.risk_list import build_risk_list, default_as_of

    started = time.perf_counter()
    explore = "" if args.exploration_share is None else f"_explore{args.exploration_share:g}"
    root = CACHE / f"uplift_{args.customers}_seed{args.seed}{explore}"
    config = _scaled(load_config(environ={"CHURN_DATA_SOURCE": str(root)}), args.capacity_scale)
    if args.exploration_share is not None:
        generator = config.generator.model_copy(update={"exploration_share": args.exploration_share})
        config = config.model_copy(update={"generator": generator})
    overrides: dict = {}
    if args.effect_penalty:
        overrides["effect_penalty"] = args.effect_penalty
    if args.effect_families is not None:
        overrides["effect_families"] = tuple(f for f in args.effect_families.split(",") if f)
    if args.candidate_saving is not None:
        none = args.candidate_saving.lower() == "none"
        overrides["candidate_saving"] = None if none else float(args.candidate_saving)
    if args.take_up_floor is not None:
        overrides["take_up_floor"] = args.take_up_floor
    if args.take_up_weight is not None:
        overrides["take_up_weight"] = args.take_up_weight
    for option in ("effect_input", "playbook_effect"):
        if getattr(args, option) is not None:
            overrides[option] = getattr(args, option)
    config = config.with_uplift(**overrides)
    tables = cached_bank(root, args.customers, args.seed, config)
    generated = time.perf_counter()
    kept = ("uplift", "roc_auc", "pr_auc", "brier", "ece")
    name = bundle_name(config)
    bundle, metrics = cached_bundle(root, tables, config, args.retrain, kept, name)
    if "uplift_qini" in metrics and "uplift_qini_unadjusted" not in metrics:
        # cached before the headline was adjusted for risk (or before the cross-fit): its
        # `uplift_qini` is another figure, and no cross-fitted rows were kept for the perfect score's
        bundle, metrics = cached_bundle(root, tables, config, True, kept, name)
    trained = time.perf_counter()
    floor_state = take_up_floor_state(bundle, config, "uplift")
    # the "uplift, playbook action" list's valuation, whatever `uplift.choose` is configured
    valued = "valued {} ({})".format(*playbook_effect_mode(bundle, config.with_uplift(choose="playbook")))
    as_of = default_as_of(tables)
    lists = {}
    for name, mode, choose in (
        ("uplift", "uplift", "best"),
        ("uplift, playbook action", "uplift", "playbook"),
        ("probability", "probability", "best"),
    ):
        rows, _ = build_risk_list(
            tables, bundle, "bench", as_of, config.with_uplift(ranking=mode, choose=choose)
        )
        lists[name] = rows
    # a reference that separates the pool from the learned effects: the uplift list's machinery
    # (customers below the reporting threshold whose best action saves `candidate_saving`) with the
    # playbook's effects in place of the learned ones, and the playbook's action
    learned = bundle.uplift
    bundle.uplift = playbook_effects(learned)
    ranked = config.with_uplift(ranking="uplift", choose="playbook")
    lists["pool, playbook effects"], _ = build_risk_list(tables, bundle, "bench", as_of, ranked)
    bundle.uplift = learned
    size = int(lists["probability"]["contact"].fillna(False).astype(bool).sum())
    lists["random"] = _random_list(lists["probability"], size, args.seed)
    truth = pd.read_parquet(root / "truth" / "customers.parquet").set_index("customer_id")
    lists["persuadables known"] = _informed_list(lists["probability"], truth, size)
    listed = time.perf_counter()

    figures = {}
    for name, rows in lists.items():
        figures[name] = simulate_rows(root, rows, config, args.seeds)
    simulated = time.perf_counter()
    configured = "uplift" if config.uplift.choose == "best" else "uplift, playbook action"
    expected = None
    if args.value_seeds:
        from benchmarks.uplift_ceiling import describe_expected, in_expectation, list_day

        day = list_day(tables, bundle, config, lists["probability"], lists[configured])
        expected = in_expectation(root, day, config, args.value_seeds, args.value_first_seed)
        expected["seconds"] = time.perf_counter() - simulated

    print(
        f"bank: {args.customers:,} customers, seed {args.seed}, exploration "
        f"{config.generator.exploration_share:.0%} of the book a month (generated or read and validated {generated - started:.0f} s; trained "
        f"{trained - generated:.0f} s: ROC-AUC {metrics.get('roc_auc', float('nan')):.3f}); lists as of "
        f"{as_of:%Y-%m-%d}, capacities x{args.capacity_scale:g}; {args.seeds} continuations each "
        f"(lists {listed - trained:.0f} s, simulation {simulated - listed:.0f} s)"
    )
    header = f"{'':28s}" + "".join(f"{n:>26s}" for n in figures)
    print(f"(ratios: the configured uplift list, uplift.choose: {config.uplift.choose}, '{configured}')")
    print(
        f"(uplift.effect_input: {config.uplift.effect_input}; playbook_effect: "
        f"{config.uplift.playbook_effect}, {valued}; take-up floor: {floor_state})"
    )
    print(header)

    def row(label: str, key: str, interval: bool = True) -> None:
        cells = []
        for f in figures.values():
            if interval and f"{key}_interval" in f:
                low, high = f[f"{key}_interval"]
                cells.append(f"{f[key]:>10,.0f} [{low:,.0f}..{high:,.0f}]".rjust(26))
            else:
                cells.append(f"{f[key]:>26,.0f}")
        print(f"{label:28s}" + "".join(cells))

    row("contacted", "contacted", False)
    row("saved customers", "saved_customers")
    row("value saved", "value_saved")
    row("cost", "cost", False)
    row("net value", "net_value")
    row("sleeping dogs contacted", "sleeping_dogs_contacted", False)
    p, r = figures["probability"], figures["random"]
    u = figures[configured]

    few = ratio(u["net_value"], p["net_value"])  # the net value on --seeds continuations
    checks = [
        ("net value, uplift / probability", few, NET_TARGET, ">="),
        ("net value, uplift / random", ratio(u["net_value"], r["net_value"]), RANDOM_TARGET, ">="),
        (
            "sleeping dogs, uplift / probability",
            u["sleeping_dogs_contacted"] / max(p["sleeping_dogs_contacted"], 1),
            DOGS_TARGET,
            "<=",
        ),
    ]
    if expected is not None:  # the target reads the expectation; the few continuations' ratio is shown
        print(f"\n{describe_expected(expected)}")
        checks[0] = ("net value, uplift / probability", expected["ratio"], NET_TARGET, ">=")
    verdicts: dict[str, dict] = {}
    for label, value, target, sense in checks:
        met = value >= target if sense == ">=" else value <= target
        verdicts[label] = {"value": value, "target": target, "sense": sense, "met": bool(met)}
        print(f"{label:40s} {value:8.2f}   (target {sense} {target:.2f}: {'met' if met else 'NOT met'})")
        if expected is not None and label == checks[0][0]:  # the net value's, read in expectation
            print(
                f"{'  on ' + str(args.seeds) + ' continuations alone':40s} {few:8.2f}   (noisier: no verdict)"
            )
    pool = figures["pool, playbook effects"]
    print(
        f"{'net value, uplift / same pool, playbook':40s} {ratio(u['net_value'], pool['net_value']):8.2f}   "
        "(no target: above 1 only where the learned effects choose better than the playbook's)"
    )
    if "uplift_qini" in metrics:
        low, high = metrics["uplift_qini_low"], metrics["uplift_qini_high"]
        met = low > 0
        verdicts["Qini interval's lower bound"] = {
            "value": low,
            "target": 0.0,
            "sense": ">",
            "met": bool(met),
        }
        print(
            f"{'Qini coefficient, held out (cross-fit)':40s} {metrics['uplift_qini']:8.4f}   "
            f"(95% interval {low:.4f} .. {high:.4f}; target above 0: {'met' if met else 'NOT met'})"
        )
        if "uplift_qini_recent" in metrics:
            print(
                f"{'  the latest months alone, adjusted':40s} {metrics['uplift_qini_recent']:8.4f}   "
                f"(95% interval {metrics['uplift_qini_recent_low']:.4f} .. {metrics['uplift_qini_recent_high']:.4f})"
            )
        crossed = "uplift_qini_playbook_action_cross_fitted"
        if crossed in metrics:
            print(
                f"{'  the playbook-choice model (its gate)':40s} {metrics[crossed]:8.4f}   "
                f"(95% interval {metrics[crossed + '_low']:.4f} .. {metrics[crossed + '_high']:.4f}; "
                "its contacts that fit against the controls, cross-fitted, adjusted)"
            )
        if "uplift_qini_unadjusted" in metrics:
            print(
                f"{'  outcomes not adjusted for risk':40s} {metrics['uplift_qini_unadjusted']:8.4f}   "
                f"(95% interval {metrics['uplift_qini_unadjusted_low']:.4f} .. "
                f"{metrics['uplift_qini_unadjusted_high']:.4f})"
            )
        from benchmarks.uplift_perfect import perfect_qini

        metrics |= perfect_qini(tables, config, truth, cached_cross_fit(root, bundle_name(config)))
        how = "adjusted as the headline" if metrics["perfect_qini_adjusted"] else "not adjusted"
        print(
            f"{'  a perfect score, same rows':40s} {metrics['perfect_qini']:8.4f}   (95% interval "
            f"{metrics['perfect_qini_low']:.4f} .. {metrics['perfect_qini_high']:.4f}, {how}: the planted "
            "response types as the score, what the history can show at all)"
        )
    scored = lists[configured][lists[configured]["status"] == "scored"].join(truth[["uplift_type"]])
    listed_rows = scored[scored["uplift"].notna()]
    by_type = listed_rows.groupby("uplift_type", observed=True)["uplift"].agg(["size", "mean"])
    print("\npredicted uplift of the chosen action by the planted response type (customers on the list):")
    print((by_type.assign(mean=lambda t: 100 * t["mean"])).to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"\nsaved by action ({configured}):", json.dumps(u["saved_by_action"]))
    if args.json:
        bank = {
            "customers": args.customers,
            "seed": args.seed,
            "exploration_share": config.generator.exploration_share,
            "take_up_floor": config.uplift.take_up_floor,
            "take_up_floor_applied": floor_state,
            "take_up_weight": config.uplift.take_up_weight,
            "effect_input": config.uplift.effect_input,
            "playbook_effect": config.uplift.playbook_effect,
            "playbook_effect_applied": valued,
            "playbook_offsets": config.uplift.playbook_offsets,
            "capacity_scale": args.capacity_scale,
            "continuations": args.seeds,
            "configured": configured,
        }
        summary = {"bank": bank, "targets": verdicts, "lists": figures, "metrics": metrics}
        if expected is not None:
            summary["expected"] = expected
        args.json.write_text(json.dumps(summary, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
