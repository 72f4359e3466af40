"""A generated bank and its trained bundle, cached under `benchmarks/.cache/` between benchmark runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd


def cached_bank(
    root: Path, customers: int, seed: int, config: Any, extract_date: pd.Timestamp | None = None
) -> dict:
    """The validated tables of a bank generated once into `root` (`generate_bank` with the config's
    kind shares and exploration share); extracted on `extract_date`, or three weeks after the bank's last day."""
    import shutil

    from features.bank.contacts import EXPLORATION_SHARE
    from features.generator import GENERATOR_VERSION, generate_bank, write_bank
    from features.io import read_tables
    from features.validation import validate_tables

    manifest = root / "manifest.json"
    explore = config.generator.exploration_share
    if manifest.exists():
        written = json.loads(manifest.read_text())
        if (
            written.get("generator_version") != GENERATOR_VERSION
            or written.get("exploration_share", EXPLORATION_SHARE) != explore
        ):
            shutil.rmtree(root)  # another generator or another bank's history: its bank and bundle are stale
    if not manifest.exists():
        shares = config.generator.churn_type_shares
        bank = generate_bank(customers=customers, seed=seed, type_shares=shares, exploration_share=explore)
        write_bank(bank, root)
    if extract_date is None:
        end = json.loads((root / "manifest.json").read_text())["end"]
        extract_date = pd.Timestamp(end) + pd.Timedelta(days=21)
    return validate_tables(
        read_tables(root),
        extract_date=extract_date,
        products=tuple(config.products),
        actions=config.action_codes,
    ).tables


def cached_bundle(
    root: Path, tables: dict, config: Any, retrain: bool, metrics: tuple[str, ...], name: str = "bundle"
) -> tuple[Any, dict[str, float]]:
    """The bundle trained on `tables` as `churn train` does (once, or again with `retrain`), and
    the training metrics whose names start with one of `metrics`; cached as `root/name` (another
    name for a bundle trained with other settings on the same bank), and trained again where it is
    `stale` for `config`."""
    from serving.model_bundle import ModelBundle
    from training.pipeline import train_models

    model_dir = root / name
    kept_metrics = root / ("metrics.json" if name == "bundle" else f"metrics_{name}.json")
    retrain = retrain or stale(model_dir, config)
    if retrain or not (model_dir / "bundle.json").exists():
        result = train_models(tables, config)
        result.bundle.save(model_dir)
        kept = {k: v for k, v in result.metrics.items() if k.startswith(metrics)}
        kept_metrics.write_text(json.dumps(kept))
        learned = result.extra.get("uplift")
        cross_fit = _cross_fit_path(root, name)
        cross_fit.unlink(missing_ok=True)
        if learned is not None and learned.cross_fit is not None:
            learned.cross_fit.to_parquet(cross_fit)
    return ModelBundle.load(model_dir), json.loads(kept_metrics.read_text())


def stale(model_dir: Path, config: Any = None) -> bool:
    """Whether the bundle cached in `model_dir` must be trained again: its churn or reasons' model
    was trained with other booster settings than `config`'s `training.churn` and
    `training.driver_params` (a benchmark would measure the old model without a word), or its
    uplift models predate the model of the playbook's choice or its cross-fitted figure
    (`playbook_effect: auto`'s gate: they would value the list the old way)."""
    if not (model_dir / "bundle.json").exists():
        return False
    # the bundle's and its uplift models' own records (`ModelBundle.save`); no booster is loaded
    meta = json.loads((model_dir / "bundle.json").read_text())
    if config is not None:
        trained = (meta.get("training") or {}).get("churn_params")
        drivers = (meta.get("drivers") or {}).get("params")
        if (
            trained != config.training.churn.model_dump()
            or drivers != config.training.driver_params.model_dump()
        ):
            return True
    uplift = model_dir / "uplift" / "uplift.json"
    if not uplift.exists():
        return False
    return "cross_fitted" not in (json.loads(uplift.read_text()).get("playbook_choice") or {})


def _cross_fit_path(root: Path, name: str) -> Path:
    return root / f"cross_fit_{name}.parquet"


def cached_cross_fit(root: Path, name: str = "bundle") -> pd.DataFrame | None:
    """The campaign rows as the cached bundle's training ranked them for its cross-fitted headline
    Qini (`training.uplift.UpliftResult.cross_fit`: score, held-out risk, treated, churn, design
    weight); None for a bundle cached before they were kept, or with no cross-fitted figures."""
    path = _cross_fit_path(root, name)
    return pd.read_parquet(path) if path.exists() else None


def benchmark_bank(parser: Any, args: Any) -> tuple[Path, Any, dict, Any]:
    """(cache folder, config, tables, bundle) of the bank `python -m benchmarks.uplift --seed S`
    cached, for a study run after it on the same bank (`args.seed`, `args.customers`,
    `args.capacity_scale`, as that run's); where there is none, the parser's error naming the
    command to run first (exit 2)."""
    from benchmarks.uplift import CACHE, _scaled
    from churn.config import load_config

    root = CACHE / f"uplift_{args.customers}_seed{args.seed}"
    config = _scaled(load_config(environ={"CHURN_DATA_SOURCE": str(root)}), args.capacity_scale)
    if not (root / bundle_name(config) / "bundle.json").exists():
        parser.error(
            f"no cached bank and bundle in {root}: run python -m benchmarks.uplift --seed {args.seed}"
        )
    tables = cached_bank(root, args.customers, args.seed, config)
    bundle, _ = cached_bundle(root, tables, config, False, ("uplift",), bundle_name(config))
    return root, config, tables, bundle


def bundle_name(config: Any) -> str:
    """The cache folder of a bundle trained with `config`'s effect input: `bundle` where the
    uplift effect models read the features (as cached before the take-up input existed),
    `bundle_take_up` where they read the take-up score; the churn model is the same either way.
    Other uplift settings (penalty, families) do not name a folder: pass `--retrain` for them."""
    return "bundle" if config.uplift.effect_input == "features" else f"bundle_{config.uplift.effect_input}"


def refit_uplift(bundle: Any, rows: pd.DataFrame, config: Any) -> Any:
    """Refit `bundle`'s uplift models on the campaign `rows` with `config`'s uplift settings, in
    place, and return what `fit_uplift` learned. The take-up floor's reference population (the
    churn model's at-risk customers in its test months, which training keeps and a benchmark does
    not rebuild) carries over from the bundle's own models: the take-up model does not depend on
    the effect settings, which is checked on the rows."""
    import copy

    import numpy as np

    from training.uplift import fit_uplift

    learned = fit_uplift(rows, bundle, config)
    old, new = bundle.uplift, learned.model
    if new is not None and new.take_up_model is not None and config.uplift.take_up_floor > 0:
        reference = ((old.meta.get("take_up") or {}).get("reference")) if old is not None else None
        if not reference or old.take_up_model is None:
            raise ValueError(
                "the cached bundle keeps no take-up model and reference to carry over: retrain it"
            )
        x = bundle.matrix(bundle.prepare(rows[bundle.feature_names].head(2_000)))
        if not np.allclose(new.take_up(x), old.take_up(x), atol=1e-6):
            raise ValueError(
                "the refitted take-up model differs from the bundle's: its floor cannot carry over"
            )
        new.meta.setdefault("take_up", {})["reference"] = copy.deepcopy(reference)
    bundle.uplift = new
    return learned
