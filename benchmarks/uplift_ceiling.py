"""The best list the simulated bank allows: how much net value any ranking could make at the same capacity.

The issue asks the uplift list for 1.5x the net value of today's list. Whether that is in reach
depends on what perfect knowledge would make, so this builds the list a clairvoyant would: every
contactable customer on the list date is contacted, with each simulated action, on continuations
of the bank that the evaluation never uses (numbered from `--first-seed`), and each contact's
expected saving is measured there (the chance the customer is lost without it and kept with it,
times their value, less its cost). The best list contacts, up to today's list's number of
contacts, the customers with the highest positive expected net value, once with the playbook's
action (the one today's list would give each customer were the reporting threshold 0; those it
gives none are left out) and once with each customer's best action; both are then scored by `churn simulate` on the
evaluation's continuations beside today's list and the configured uplift list (the same figures
as `benchmarks.uplift` on that bank). The estimates are kept in the bank's cache folder. Run after
`python -m benchmarks.uplift --seed S`:

    python -m benchmarks.uplift_ceiling --seed 20261244

A benchmark, not a product path: it reads what the simulated bank knows and the product cannot.
The best list is chosen on noisy estimates (a few dozen continuations), so it is a floor under
what perfect knowledge would make. Each best list is built twice: without the teams' capacities
(up to today's number of contacts, however they fall on the teams: the first version of this
benchmark, which gave the branch managers about three times the calls they can make) and
`capacities`, decided as the product decides its lists (`best_list_within`: the contact policy
and each team's daily capacity), the comparison at the same capacity that the issue asks for.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from benchmarks.uplift import DOGS_TARGET, NET_TARGET, as_list, contactable, ratio, simulate_rows


def expected_net(savings: pd.DataFrame, contacts: pd.DataFrame, seeds: int) -> tuple[float, float]:
    """A list's net value on the estimating continuations, from its contacts' (customer_id, action)
    estimates, with its standard error (customers' savings independent: each contact's variance
    is value^2 x (moved - saved^2), over `seeds` continuations)."""
    got = savings.set_index(["customer_id", "action"]).reindex(
        pd.MultiIndex.from_arrays([contacts["customer_id"], contacts["action"]])
    )
    if got["net"].isna().any():
        raise ValueError(f"{int(got['net'].isna().sum())} contact(s) have no estimate")
    if seeds < 2:
        return float(got["net"].sum()), float("nan")
    # each contact's saving per continuation is -1, 0 or 1: its variance is moved - saved^2 (with
    # n - 1 in the denominator), and the mean over `seeds` continuations has 1/seeds of it
    variance = got["value"] ** 2 * (got["moved"] - got["saved"] ** 2).clip(lower=0) * seeds / (seeds - 1)
    return float(got["net"].sum()), float((variance.sum() / seeds) ** 0.5)


class ListDay(NamedTuple):
    as_of: pd.Timestamp
    today: pd.DataFrame  # today's list (`ranking: probability`)
    configured: pd.DataFrame  # the configured uplift list
    size: int  # today's number of contacts
    everyone: pd.DataFrame  # the list with the reporting threshold at 0: every customer's action
    features: pd.DataFrame  # the feature rows scored on the day


def contacts_of(rows: pd.DataFrame) -> pd.DataFrame:
    """A list's contacts (customer_id, action) from its rows (`build_risk_list`'s or `as_list`'s)."""
    contacted = rows[rows["contact"].fillna(False).astype(bool)]
    action = contacted["action"].fillna("retention_call").astype(str)
    return pd.DataFrame({"customer_id": contacted.index, "action": action.to_numpy()})


def list_day(
    tables: dict, bundle, config, today: pd.DataFrame | None = None, configured: pd.DataFrame | None = None
) -> ListDay:
    """The day's lists as `benchmarks.uplift` builds them (or as given), and the playbook's action
    for every customer, not only those above the reporting threshold: the same list with the
    threshold at 0 (every customer's reasons, kind of churn and action)."""
    from serving.risk_list import build_risk_list, default_as_of

    as_of = default_as_of(tables)
    if today is None:
        today, _ = build_risk_list(tables, bundle, "bench", as_of, config.with_uplift(ranking="probability"))
    if configured is None:
        configured, _ = build_risk_list(tables, bundle, "bench", as_of, config.with_uplift(ranking="uplift"))
    scoring = config.scoring.model_copy(update={"reporting_threshold": 0.0})
    zero = config.model_copy(update={"scoring": scoring}).with_uplift(ranking="probability")
    everyone, features = build_risk_list(tables, bundle, "bench", as_of, zero)
    size = int(today["contact"].fillna(False).astype(bool).sum())
    return ListDay(as_of, today, configured, size, everyone, features)


def playbook_frames(
    day: ListDay, lists: dict[str, pd.DataFrame]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """(candidates, frames): the contactable customers that the day's list with the reporting
    threshold at 0 gives an action (the playbook's), and the frames whose savings value any list
    of them: every candidate with that action, and the contacts of `lists` (name: contacts, as
    `contacts_of` gives them) with another action, one per customer (`cached_savings` keys its
    estimates by these frames, so studies that pass the same lists share them)."""
    candidates = contactable(day.everyone)
    candidates = candidates[candidates["action"].notna()]
    playbook = pd.DataFrame({"customer_id": candidates.index, "action": candidates["action"].astype(str)})
    listed = pd.concat(lists.values()).drop_duplicates()
    known = pd.MultiIndex.from_frame(playbook)
    other = listed[~pd.MultiIndex.from_frame(listed).isin(known)].drop_duplicates("customer_id")
    frames = {
        name: rows.assign(contact=True, as_of=day.as_of)
        for name, rows in (("playbook", playbook), ("listed, other actions", other))
        if len(rows)
    }
    return candidates, frames


def expectation_savings(root: Path, day: ListDay, config, seeds: int, first: int) -> pd.DataFrame:
    """The estimates `in_expectation` values the day's lists by (`cached_savings` of the frames of
    today's and the configured list, `playbook_frames`), with `config`'s costs, one per customer
    and action: any list that keeps the playbook's action is valued from them
    (`benchmarks.uplift_settings`)."""
    made = {"today": contacts_of(day.today), "configured": contacts_of(day.configured)}
    _, frames = playbook_frames(day, made)
    savings = with_costs(cached_savings(root, "playbook", frames, config, seeds, first), config)
    return savings.drop_duplicates(["customer_id", "action"])


def in_expectation(root: Path, day: ListDay, config, seeds: int, first: int) -> dict[str, dict]:
    """Today's list's and the configured uplift list's net value on `seeds` continuations from
    `first` (`expected_net`: each contact's estimated saving, summed, with a standard error), and
    their ratio: the net-value comparison with a tenth of the noise of a few continuations of
    `churn simulate`. Shares its estimates with `benchmarks.uplift_observables` (the same frames)."""
    lists = {"today": contacts_of(day.today), "configured": contacts_of(day.configured)}
    savings = expectation_savings(root, day, config, seeds, first)
    out = {}
    for name, contacts in lists.items():
        net, se = expected_net(savings, contacts, seeds)
        out[name] = {"contacted": len(contacts), "net_value": net, "net_value_se": se}
    today, mine = out["today"], out["configured"]
    out["ratio"] = ratio(mine["net_value"], today["net_value"])
    # the lists taken as independent: an overstatement, since they share customers
    relative = [
        f["net_value_se"] / abs(f["net_value"]) if f["net_value"] else float("nan") for f in (today, mine)
    ]
    out["ratio_se"] = abs(out["ratio"]) * (relative[0] ** 2 + relative[1] ** 2) ** 0.5
    out["continuations"] = {"seeds": seeds, "first": first}
    return out


def describe_expected(expected: dict) -> str:
    """`in_expectation`'s figures in a sentence."""
    today, mine, c = expected["today"], expected["configured"], expected["continuations"]
    return (
        f"in expectation ({c['seeds']} continuations from #{c['first']}, contact by contact): today's net "
        f"value {today['net_value']:,.0f} ({today['net_value_se']:,.0f}), the configured list's "
        f"{mine['net_value']:,.0f} ({mine['net_value_se']:,.0f}); ratio {expected['ratio']:.2f} +- "
        f"{expected['ratio_se']:.2f} (standard error, the lists taken as independent: an overstatement, "
        "they share customers)"
    )


def savings_path(
    root: Path, label: str, frames: dict[str, pd.DataFrame], config, seeds: int, first: int
) -> Path:
    """Where `cached_savings` keeps the estimates of `frames`: a name that holds everything they
    depend on but the costs (the contacts in their order and their date, the horizon, the
    catalogue, the value parameters, the generator's version and the simulator's reach and
    stream), so a run with another configuration, other candidates or another simulator estimates
    again. A change to the response model must bump `GENERATOR_VERSION`, as for the banks."""
    import hashlib

    from features.bank.simulate import REACH, STREAM, _parameters
    from features.generator import GENERATOR_VERSION

    digest = hashlib.sha256()
    parameters = {k: v for k, v in _parameters(config).items() if k != "costs"}
    parameters |= {"generator": GENERATOR_VERSION, "reach": REACH, "stream": STREAM}
    digest.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    for name in sorted(frames):
        frame = frames[name]
        digest.update(name.encode())
        digest.update(frame["customer_id"].to_numpy(dtype="int64").tobytes())
        digest.update("\n".join(frame["action"].astype(str)).encode())
        digest.update(str(pd.Timestamp(frame["as_of"].iloc[0]).date()).encode())
    return root / f"savings_{label}_{seeds}_from{first}_{digest.hexdigest()[:12]}.parquet"


def cached_savings(
    root: Path,
    label: str,
    frames: dict[str, pd.DataFrame],
    config,
    seeds: int,
    first: int,
) -> pd.DataFrame:
    """`expected_savings` of `frames` on `seeds` continuations from `first`, kept in the bank's
    cache folder (`savings_path`; written whole or not at all, so two runs at once cannot read half
    a file). The costs and net values are not kept: `with_costs` adds them from the configuration
    that reads the estimates."""
    from features.bank.simulate import expected_savings

    kept = savings_path(root, label, frames, config, seeds, first)
    if kept.exists():
        return pd.read_parquet(kept)
    savings = expected_savings(root, frames, config, seeds, first).drop(columns=["cost", "net"])
    partial = kept.with_suffix(f".{os.getpid()}.partial")
    savings.to_parquet(partial)
    partial.replace(kept)
    return savings


def with_costs(savings: pd.DataFrame, config) -> pd.DataFrame:
    """Estimates with each action's cost and net value (saved x value - cost) from `config`, not
    from the run that cached them."""
    cost = savings["action"].map({name: a.cost for name, a in config.playbook.actions.items()})
    if cost.isna().any():
        unknown = sorted(savings.loc[cost.isna(), "action"].astype(str).unique())
        raise ValueError(f"playbook.actions: no cost for {', '.join(unknown)}")
    return savings.assign(cost=cost, net=savings["saved"] * savings["value"] - cost)


def _best_contacts(savings: pd.DataFrame) -> pd.DataFrame:
    """Each customer's best contact where it pays (positive expected net value), best first."""
    best = savings.sort_values("net", ascending=False).drop_duplicates("customer_id")
    return best[best["net"] > 0]


def best_list(savings: pd.DataFrame, size: int) -> pd.DataFrame:
    """At most `size` contacts, one per customer, with the highest positive expected net value."""
    return _best_contacts(savings).head(size)


def best_list_within(savings: pd.DataFrame, size: int, rows: pd.DataFrame, config) -> pd.DataFrame:
    """`best_list` as the product decides its own lists: each customer's best contact, then the
    contact policy (do-not-contact, control group, the gap since the last contact, the quarter's
    limit) and each team's daily capacity (per branch for branch teams) by `serving.policy`, the
    highest net values first; at most `size`. `rows` holds the customers' policy columns (the
    day's list with the reporting threshold at 0). Without this a clairvoyant can give one team
    (the branch managers' service-recovery calls, say) several times the calls it can make. With
    several actions per customer it is a floor, not the best such list: a customer whose best
    action's team is full is not offered another team's action (as the product's `choose: best`)."""
    from serving.policy import action_attributes, contact_decisions

    best = _best_contacts(savings).set_index("customer_id")
    here = rows.reindex(best.index)
    if here["branch_id"].isna().any():
        raise ValueError("rows: some customers of the estimates have no row (branch, contact history)")
    candidates = pd.DataFrame(
        {
            "reportable": True,
            "do_not_contact": here["do_not_contact"].eq(True),
            "control_group": here["control_group"].eq(True),
            "days_since_last_contact": here["days_since_last_contact"].astype(float),
            "contacts_last_quarter": here["contacts_last_quarter"].fillna(0).astype(float),
            "expected_saving": best["net"],
            "owner": action_attributes(best["action"].to_numpy(), config.playbook)["owner"],
            "branch_id": here["branch_id"].astype(str),
        },
        index=best.index,
    )
    decided = contact_decisions(candidates, config.contact_policy, config.playbook)
    picked = decided.loc[decided["contact"], "list_rank"].sort_values().index[:size]
    return best.loc[picked].reset_index()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--seeds", type=int, default=5, help="simulated continuations per list (evaluation)")
    parser.add_argument(
        "--oracle-seeds", type=int, default=20, help="continuations the best list's estimates are made on"
    )
    parser.add_argument(
        "--first-seed", type=int, default=1000, help="the first of those continuations' numbers"
    )
    parser.add_argument("--capacity-scale", type=float, default=4.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.first_seed < args.seeds:
        parser.error("--first-seed: must not overlap the evaluation's continuations (0 .. --seeds - 1)")

    from benchmarks.cached import benchmark_bank
    from features.bank.response import ACTIONS

    root, config, tables, bundle = benchmark_bank(parser, args)
    day = list_day(tables, bundle, config)
    as_of, today, configured, size = day.as_of, day.today, day.configured, day.size
    candidates = contactable(day.everyone)
    playbook = candidates["action"]

    started = time.perf_counter()
    frames = {
        action: pd.DataFrame(
            {"customer_id": candidates.index, "action": action, "contact": True, "as_of": as_of}
        )
        for action in ACTIONS
        if action in config.playbook.actions
    }
    savings = cached_savings(root, "actions", frames, config, args.oracle_seeds, args.first_seed)
    savings = with_costs(savings, config)
    estimated = time.perf_counter() - started
    fits = savings["action"].to_numpy() == playbook.reindex(savings["customer_id"]).to_numpy()
    chosen = {
        "best list, playbook action": best_list(savings[fits], size),
        "best list, best action": best_list(savings, size),
        "best list, playbook action, capacities": best_list_within(savings[fits], size, candidates, config),
        "best list, best action, capacities": best_list_within(savings, size, candidates, config),
    }

    lists = {"probability (today)": today, f"uplift ({config.uplift.choose} action)": configured}
    for name, picked in chosen.items():
        ids = pd.Index(picked["customer_id"])
        rows = candidates.loc[ids].assign(as_of=as_of)
        lists[name] = as_list(rows, ids).assign(action=picked.set_index("customer_id")["action"])
    figures = {name: simulate_rows(root, rows, config, args.seeds) for name, rows in lists.items()}
    base = figures["probability (today)"]

    print(
        f"bank seed {args.seed}, {args.customers:,} customers, list of {as_of:%Y-%m-%d}; "
        f"{len(candidates):,} contactable customers x {savings['action'].nunique()} actions estimated on "
        f"{args.oracle_seeds} continuations from #{args.first_seed} ({estimated:.0f} s); "
        f"every list scored on continuations #0..#{args.seeds - 1}"
    )
    print(f"{'list':42s} {'contacted':>9s} {'net value':>24s} {'x today':>8s} {'dogs':>5s} {'x':>6s}")
    out = {}
    for name, f in figures.items():
        net = ratio(f["net_value"], base["net_value"])
        dogs = f["sleeping_dogs_contacted"] / max(base["sleeping_dogs_contacted"], 1)
        low, high = f["net_value_interval"]
        print(
            f"{name:42s} {f['contacted']:9,d} {f['net_value']:>10,.0f} [{low:,.0f}..{high:,.0f}]".ljust(78)
            + f"{net:8.2f} {f['sleeping_dogs_contacted']:5d} {dogs:6.2f}"
        )
        out[name] = f | {"net_x_today": net, "dogs_x_today": dogs}
    print(
        f"(targets for the uplift list: net value >= {NET_TARGET:g}x today's, sleeping dogs <= "
        f"{DOGS_TARGET:.2f}x; the best lists say how far any ranking could go at this capacity)"
    )
    print(
        f"\nthe same lists' net value on the {args.oracle_seeds} estimating continuations (standard error; "
        "the best lists were chosen on them, so theirs is flattered):"
    )
    for name, rows in lists.items():
        net, se = expected_net(savings, contacts_of(rows), args.oracle_seeds)
        out[name] |= {"net_estimating": net, "net_estimating_se": se}
    today_net = out["probability (today)"]["net_estimating"]
    for name, f in out.items():
        f["net_estimating_x_today"] = ratio(f["net_estimating"], today_net)
        print(
            f"{name:42s} {f['net_estimating']:>12,.0f} ({f['net_estimating_se']:,.0f}) {f['net_estimating_x_today']:8.2f}"
        )
    for name, picked in chosen.items():
        print(f"{name}: actions {json.dumps(picked['action'].value_counts().to_dict())}")
    if args.json:
        summary = {
            "bank": {"customers": args.customers, "seed": args.seed, "continuations": args.seeds},
            "oracle": {"seeds": args.oracle_seeds, "first_seed": args.first_seed, "seconds": estimated},
            "lists": out,
        }
        args.json.write_text(json.dumps(summary, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
