"""Serving-time settings of the uplift list on one bank, side by side, in expectation.

The settings that decide the list without retraining (`uplift.take_up_floor`,
`uplift.playbook_effect`, `uplift.candidate_saving`, `uplift.sleeping_dog_harm`) move both the
net value and the sleeping dogs the list contacts. This builds today's list and the configured
uplift list once per `--variant` from the bank and bundle `python -m benchmarks.uplift --seed S`
cached, values every list on the same continuations as that run's expectation
(`--value-seeds` from `--value-first-seed`, contact by contact, `benchmarks.uplift_ceiling`'s
cached per-candidate savings: the variants keep the playbook's action, so no estimate is made
again), and counts each list's sleeping dogs from `truth/`. Prints, per variant, the contacts,
the net value with its standard error and its ratio to today's list's, and the dogs with their
ratio to today's, against the issue's targets:

    python -m benchmarks.uplift_settings --seed 20261246 --variant floor0.6=take_up_floor=0.6 \\
        --variant per_action=playbook_effect=per_action

`--playbook-effects` adds each variant again with the playbook's configured effects in place of the
learned ones (`benchmarks.uplift`'s "pool, playbook effects": the same pool, floor and action),
and every list but today's and the configured one is also given as its difference from the
configured list, paired (`paired_difference`: the contacts both lists make cancel, so the
difference's standard error is far smaller than either list's).

A design aid, not a product path: it reads `truth/`, which the product never does. Choose a setting
on one bank and claim what it does only on banks it was not chosen on (`make bench-uplift`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from benchmarks.uplift import DOGS_TARGET, NET_TARGET, playbook_effects, ratio


def parse_variant(text: str, uplift) -> tuple[str, dict]:
    """`NAME=key=value,key=value` as (name, settings), validated as the config validates `uplift:`
    (`none` for null): an unknown key, or a value of the wrong type or outside its range, is an
    error that names it."""
    import yaml
    from pydantic import ValidationError

    name, _, body = text.partition("=")
    if not name:
        raise ValueError(f"--variant {text!r}: NAME=key=value,... expected")
    if name in ("today", "configured") or name.endswith(", playbook effects"):
        raise ValueError(f"--variant {name}: the name of a list the study always builds; choose another")
    settings: dict = {}
    for item in filter(None, body.split(",")):
        key, sep, raw = item.partition("=")
        if not sep or key not in type(uplift).model_fields:
            raise ValueError(f"--variant {name}: {key!r} is not an uplift setting (key=value expected)")
        settings[key] = None if raw.lower() == "none" else yaml.safe_load(raw)  # as the YAML reads it
    try:
        checked = type(uplift).model_validate(uplift.model_dump() | settings)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"--variant {name}: {problems}") from None
    return name, {key: getattr(checked, key) for key in settings}


def list_figures(rows: pd.DataFrame, savings: pd.DataFrame, dogs: pd.Index, seeds: int) -> dict:
    """A list's contacts, net value in expectation (with its standard error) and sleeping dogs."""
    from benchmarks.uplift_ceiling import contacts_of, expected_net

    contacts = contacts_of(rows)
    net, se = expected_net(savings, contacts, seeds)
    return {
        "contacted": len(contacts),
        "net_value": net,
        "net_value_se": se,
        "sleeping_dogs": int(contacts["customer_id"].isin(dogs).sum()),
    }


def paired_difference(
    savings: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame, seeds: int
) -> tuple[float, float]:
    """List `a`'s net value in expectation less list `b`'s (contacts as `contacts_of` gives them),
    with the standard error of the difference: the contacts both lists make cancel, so only the
    ones in either alone add to it (customers independent; conservative where one customer is in
    both with different actions, whose two savings share their continuations)."""
    from benchmarks.uplift_ceiling import expected_net

    keys = ["customer_id", "action"]
    both = a.merge(b, on=keys)[keys]
    only_a = a.merge(both, on=keys, how="left", indicator=True).query("_merge == 'left_only'")[keys]
    only_b = b.merge(both, on=keys, how="left", indicator=True).query("_merge == 'left_only'")[keys]
    (gain, gain_se), (loss, loss_se) = (
        expected_net(savings, only_a, seeds),
        expected_net(savings, only_b, seeds),
    )
    return gain - loss, (gain_se**2 + loss_se**2) ** 0.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--capacity-scale", type=float, default=4.0)
    parser.add_argument("--value-seeds", type=int, default=60)
    parser.add_argument("--value-first-seed", type=int, default=2000)
    parser.add_argument("--variant", action="append", default=[], help="NAME=key=value,... (uplift settings)")
    parser.add_argument(
        "--playbook-effects",
        action="store_true",
        help="also each variant with the playbook's configured effects in place of the learned ones "
        "(the same pool, floor and action): what the learning adds, in expectation",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from benchmarks.cached import benchmark_bank
    from benchmarks.uplift_ceiling import contacts_of, expectation_savings, list_day
    from serving.risk_list import build_risk_list

    root, config, tables, bundle = benchmark_bank(parser, args)
    try:
        variants = [("configured", {})] + [parse_variant(v, config.uplift) for v in args.variant]
    except ValueError as exc:
        parser.error(str(exc))
    day = list_day(tables, bundle, config)
    lists = {"today": day.today}
    learned = bundle.uplift
    for name, settings in variants:
        ranked = config.with_uplift(**settings).with_uplift(ranking="uplift")
        lists[name], _ = build_risk_list(tables, bundle, "bench", day.as_of, ranked)
        if args.playbook_effects:  # `benchmarks.uplift`'s "pool, playbook effects", in expectation
            bundle.uplift = playbook_effects(learned)
            lists[f"{name}, playbook effects"], _ = build_risk_list(
                tables, bundle, "bench", day.as_of, ranked
            )
            bundle.uplift = learned
    seeds, first = args.value_seeds, args.value_first_seed
    # the estimates `benchmarks.uplift`'s expectation made (and cached) for the same day
    savings = expectation_savings(root, day, config, seeds, first)
    truth = pd.read_parquet(root / "truth" / "customers.parquet").set_index("customer_id")
    dogs = truth.index[truth["uplift_type"].astype(str).eq("sleeping_dog")]

    figures = {name: list_figures(rows, savings, dogs, seeds) for name, rows in lists.items()}
    for name in figures.keys() - {"today", "configured"}:  # paired: the shared contacts cancel
        difference = paired_difference(
            savings, contacts_of(lists[name]), contacts_of(lists["configured"]), seeds
        )
        figures[name]["minus_configured"], figures[name]["minus_configured_se"] = difference
    today = figures["today"]
    width = max(16, *map(len, figures))
    print(
        f"bank seed {args.seed}, {args.customers:,} customers, list of {day.as_of:%Y-%m-%d}; net value "
        f"in expectation on {seeds} continuations from #{first}; ratios x today's list"
    )
    print(
        f"{'list':{width}s} {'settings':44s} {'contacted':>9s} {'net value (se)':>20s} {'x':>6s} {'dogs':>5s} {'x':>6s}"
    )
    settings = dict(variants)
    for name, f in figures.items():
        f["net_ratio"] = ratio(f["net_value"], today["net_value"])
        f["dogs_ratio"] = f["sleeping_dogs"] / max(today["sleeping_dogs"], 1)
        met = [
            t
            for t, ok in (("net", f["net_ratio"] >= NET_TARGET), ("dogs", f["dogs_ratio"] <= DOGS_TARGET))
            if ok
        ]
        own = settings.get(name.removesuffix(", playbook effects"), {})
        shown = ",".join(f"{k}={v}" for k, v in own.items()) or "-"
        print(
            f"{name:{width}s} {shown:44s} {f['contacted']:9,d} {f['net_value']:11,.0f} ({f['net_value_se']:6,.0f}) "
            f"{f['net_ratio']:6.2f} {f['sleeping_dogs']:5d} {f['dogs_ratio']:6.2f}  "
            f"{'met: ' + ', '.join(met) if name != 'today' and met else ''}"
        )
    for name, f in figures.items():
        if "minus_configured" in f:
            print(
                f"{name} less configured, paired: {f['minus_configured']:+,.0f} "
                f"({f['minus_configured_se']:,.0f}; the contacts both make cancel)"
            )
    if args.json:
        out = {"seed": args.seed, "variants": {k: dict(v) for k, v in variants}, "figures": figures}
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
