"""The learned uplift of each retention action, as the list and the API apply it.

Learned on the bank's randomised campaigns (`training/uplift.py`, an R-learner): a linear model of
any contact's relative change of the churn probability within the horizon, and for each action
one on top of it; the uplift of action a for a customer is P(churn | no contact) - P(churn | a), the
churn probability the contact takes away (negative: the contact pushes the customer away). Where an action has little randomised evidence, the learned uplift is
shrunk toward the playbook's configured effect (`P(churn) x effect`), in proportion to the
evidence: `learned_share = events / (events + prior_events)`, with `events` the fewer of the
churners among the action's customers and among the controls.

Beside them, one model of the playbook's own choice (`PLAYBOOK`): the relative effect of a contact
whose action was the one the playbook chooses for the customer, against the controls. The
campaigns mixed their actions at random, so most of any action's contacts did not fit the
customer's cause, and any contact's effect plus an action's offset describes the average contact,
not the fitting one the list makes. A list that keeps the playbook's action (`uplift.choose:
playbook`) values it by this model with `uplift.playbook_effect: pooled` (`pooled=True` below),
or with `auto` (the default) where its own cross-fitted Qini interval is above zero
(`serving.actions.playbook_effect_mode`), each action still shrunk toward its configured effect by
its own evidence.

Beside them, a take-up model: P(the offer is accepted | the customer was reached), a LightGBM
classifier on the bundle's features, fitted on the outcomes the campaigns recorded. A contact's
outcome is a far denser signal than the churn it changes, and who declines is who a contact does
not move: the list can leave the customers least likely to respond uncontacted
(`uplift.take_up_floor`, `serving.actions`). The floor is one take-up figure per model, so the
list and `/score` decide alike: the configured share of the customers the churn model put at or
above the reporting threshold in the latest months it was tested on (`take_up_reference`; the
quantiles are kept, so the share can change without retraining). Softer, `uplift.take_up_weight`
weighs each contact's saving by (take-up / that population's median take-up) ** weight, capped at
TAKE_UP_FACTOR_CAP (`take_up_factor`): a valuable customer who is unlikely to respond can still be
worth a call, where a floor leaves them out whatever their value.

With `uplift.effect_input: take_up` the effect models read the take-up score alone (its log-odds,
standardised; `effect_basis`), so the take-up model is part of every uplift figure.

Saved beside the bundle as `uplift/uplift.json`: the evidence, each effect model's intercept and
weights on the standardised features (or the take-up score), the take-up quantiles; the take-up
model as LightGBM text, `uplift/take_up.txt`, and where the effects read it, the one fitted without
the held-out months that the promotion comparison scores them with, `uplift/take_up_held_out.txt`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from features.campaigns import CONTROL

CONTACT = "contact"
PLAYBOOK = "playbook_action"  # the effect of the action the playbook chooses for the customer
TAKE_UP_FILE = "take_up.txt"
HELD_OUT_TAKE_UP_FILE = "take_up_held_out.txt"  # fitted without the held-out months (promotion)
TAKE_UP_GRID = np.round(np.linspace(0.0, 0.9, 19), 2)  # the shares whose take-up is kept
TAKE_UP_FACTOR_CAP = 2.0  # the most a likely responder's saving is weighed up


def take_up_log_odds(take_up: np.ndarray) -> np.ndarray:
    t = np.clip(np.asarray(take_up, dtype=float), 1e-3, 1 - 1e-3)
    return np.log(t / (1 - t))


def basis_take_up(spec: dict[str, Any], take_up: lgb.Booster | None, x: np.ndarray) -> np.ndarray | None:
    """The take-up score that the effect basis `spec` reads, by the `take_up` booster, for the rows
    of `x`; None where the basis reads the features (or there is no booster: `effect_basis` says so)."""
    return take_up.predict(x) if "take_up" in spec and take_up is not None else None


def effect_basis(
    x: np.ndarray, spec: dict[str, Any], feature_index: dict[str, int], take_up: np.ndarray | None = None
) -> np.ndarray:
    """The effect models' inputs. With `uplift.effect_input: take_up` (a `take_up` entry in the
    spec): the take-up score's log-odds, centred and scaled as in training, the one column.
    Otherwise: numeric features centred and scaled as in training (missing at the mean, clipped to
    five scales), then an indicator per non-reference level of each categorical."""
    if "take_up" in spec:
        if take_up is None:
            raise ValueError("the effect models read the take-up score, and no take-up model was given")
        scaled = (take_up_log_odds(take_up) - spec["take_up"]["mean"]) / spec["take_up"]["scale"]
        return np.clip(scaled, -5.0, 5.0)[:, None]
    numeric = x[:, [feature_index[n] for n in spec["numeric"]]].astype(float)
    mean, scale = np.asarray(spec["mean"], dtype=float), np.asarray(spec["scale"], dtype=float)
    columns = [np.clip(np.nan_to_num((numeric - mean) / scale, nan=0.0), -5.0, 5.0)]
    for name, levels in spec["levels"].items():
        column = x[:, feature_index[name]]
        columns.append((column[:, None] == np.asarray(levels, dtype=float)[None, :]).astype(float))
    return np.column_stack(columns)


def apply_effect(z: np.ndarray, effect: dict[str, Any]) -> np.ndarray:
    return effect["b"] + z @ np.asarray(effect["w"], dtype=float)


class UpliftModel:
    """Linear relative effects per action on the bundle's features (an R-learner's), and what each
    action's estimate rests on."""

    def __init__(
        self,
        meta: dict[str, Any],
        take_up: lgb.Booster | None = None,
        held_out_take_up: lgb.Booster | None = None,
    ):
        self.meta = meta
        self.take_up_model = take_up  # P(accepted | reached); None where too few outcomes
        # the take-up model fitted without the held-out months, which the held-out effects read
        # when their input is the take-up score (`effect_basis`; `training.uplift_compare`)
        self.held_out_take_up_model = held_out_take_up
        self.actions: list[str] = list(meta["actions"])
        self.feature_index: dict[str, int] = {n: j for j, n in enumerate(meta.get("feature_names", []))}
        self.learned_share: dict[str, float] = {
            a: float(meta["learned_share"].get(a, 0.0)) for a in self.actions
        }

    @classmethod
    def load(cls, directory: str | Path) -> UpliftModel | None:
        path = Path(directory) / "uplift.json"
        if not path.exists():
            return None
        boosters = [Path(directory) / name for name in (TAKE_UP_FILE, HELD_OUT_TAKE_UP_FILE)]
        return cls(
            json.loads(path.read_text()),
            *(lgb.Booster(model_file=b) if b.exists() else None for b in boosters),
        )

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "uplift.json").write_text(json.dumps(self.meta, indent=2))
        for booster, name in (
            (self.take_up_model, TAKE_UP_FILE),
            (self.held_out_take_up_model, HELD_OUT_TAKE_UP_FILE),
        ):
            if booster is not None:
                booster.save_model(directory / name)
        return directory

    def take_up(self, x: np.ndarray) -> np.ndarray | None:
        """P(the offer is accepted | the customer is reached) per row of the bundle's feature
        matrix; None without a take-up model."""
        return None if self.take_up_model is None else self.take_up_model.predict(x)

    def take_up_reference(self, x: np.ndarray, description: str) -> None:
        """Keep the take-up quantiles (at TAKE_UP_GRID) of these rows, the population a floor's
        share is of (`description` says which)."""
        take_up = self.take_up(x)
        if take_up is None or len(take_up) == 0:
            return
        self.meta.setdefault("take_up", {})["reference"] = {
            "rows": len(take_up),
            "of": description,
            "quantiles": np.quantile(take_up, TAKE_UP_GRID).tolist(),
        }

    def take_up_floor(self, share: float) -> float | None:
        """The take-up below which a customer is among the lowest `share` of the reference
        population; None without a take-up model or reference."""
        reference = (self.meta.get("take_up") or {}).get("reference")
        if self.take_up_model is None or not reference or share <= 0:
            return None
        return float(np.interp(share, TAKE_UP_GRID, reference["quantiles"]))

    def take_up_factor(self, x: np.ndarray, weight: float) -> np.ndarray | None:
        """(predicted take-up / the reference population's median take-up) ** `weight` per row,
        at most TAKE_UP_FACTOR_CAP: what a contact's expected saving is weighed by. None without a
        take-up model or reference, or with `weight` 0."""
        median = self.take_up_floor(0.5) if weight > 0 else None
        if median is None or median <= 0 or len(x) == 0:
            return None
        ratio = np.clip(self.take_up(x) / median, 0.0, None)
        return np.minimum(ratio**weight, TAKE_UP_FACTOR_CAP)

    def learned(
        self, x: np.ndarray, probability: np.ndarray, pooled: bool = False, offsets: bool = True
    ) -> dict[str, np.ndarray]:
        """P(churn | control) - P(churn | action) per action that has a model of its own: the
        learned relative effect times the customer's churn probability (a contact can take away
        only the risk there is, and a sleeping dog's added risk is at most the rest). With
        `pooled` (and a model of the playbook's choice), every such action's relative effect is
        that model's: what the action does for a customer the playbook chooses it for, plus, with
        `offsets`, the action's own offset on it (shrunk by empirical Bayes; `uplift.playbook_offsets`)."""
        effects = self.meta.get("effects") or {}
        if CONTACT not in effects:
            return {}
        score = basis_take_up(effects["basis"], self.take_up_model, x)
        z = effect_basis(x, effects["basis"], self.feature_index, score)
        p = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
        if pooled and PLAYBOOK in effects:
            chosen = apply_effect(z, effects[PLAYBOOK])
            shift = effects[PLAYBOOK].get("offsets", {}) if offsets else {}
            relative = {
                a: chosen + (shift[a]["b"] if a in shift else 0.0) for a in self.actions if a in effects
            }
        else:
            any_contact = apply_effect(z, effects[CONTACT])
            relative = {a: any_contact + apply_effect(z, effects[a]) for a in self.actions if a in effects}
        return {a: np.clip(-p * r, -(1.0 - p), p) for a, r in relative.items()}

    def uplift(
        self,
        x: np.ndarray,
        probability: np.ndarray,
        effects: dict[str, float],
        pooled: bool = False,
        offsets: bool = True,
    ) -> dict[str, np.ndarray]:
        """Per action: the learned uplift (`learned`, `pooled` or not, with `offsets` or not)
        shrunk toward the playbook's `probability x effect`. Actions without a model (or without
        evidence) get the playbook's figure alone."""
        learned = self.learned(x, probability, pooled, offsets)
        out = {}
        for action, effect in effects.items():
            prior = probability * float(effect)
            share = self.learned_share.get(action, 0.0) if action in learned else 0.0
            out[action] = share * learned[action] + (1.0 - share) * prior if share > 0 else prior
        return out


__all__ = [
    "CONTACT",
    "CONTROL",
    "PLAYBOOK",
    "UpliftModel",
    "apply_effect",
    "basis_take_up",
    "effect_basis",
    "take_up_log_odds",
]
