"""The learned uplift of each retention action, as the list and the API apply it.

Learned on the bank's randomised campaigns (`training/uplift.py`): a LightGBM base model of the
churn probability within the horizon without a contact, and linear offsets on its log-odds for
any contact and for each action; the uplift of action a for a customer is P(churn | no contact) -
P(churn | a), the share of a churn probability the contact takes away (negative: the contact
pushes the customer away). Where an action has little randomised evidence, the learned uplift is
shrunk toward the playbook's configured effect (`P(churn) x effect`), in proportion to the
evidence: `learned_share = events / (events + prior_events)`, with `events` the fewer of the
churners among the action's customers and among the controls.

Saved beside the bundle as `uplift/uplift.json` (evidence, scaling, offsets) and `uplift/base.txt`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from features.campaigns import CONTROL

BASE, CONTACT = "base", "contact"


def _sigmoid(margin: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-margin))


def standardise(z: np.ndarray, scaling) -> np.ndarray:
    """Numeric features centred and scaled as in training; missing values at the mean; clipped."""
    mean, scale = (np.asarray(v, dtype=float) for v in scaling)
    return np.clip(np.nan_to_num((np.asarray(z, dtype=float) - mean) / scale, nan=0.0), -5.0, 5.0)


def apply_offset(z: np.ndarray, offset: dict) -> np.ndarray:
    return offset["b"] + z @ np.asarray(offset["w"], dtype=float)


class UpliftModel:
    """Boosters per arm on the bundle's feature matrix, and what each action's estimate rests on."""

    def __init__(self, meta: dict[str, Any], boosters: dict[str, lgb.Booster]):
        self.meta = meta
        self.boosters = boosters
        self.actions: list[str] = list(meta["actions"])
        self.feature_index: dict[str, int] = {n: j for j, n in enumerate(meta.get("feature_names", []))}
        self.learned_share: dict[str, float] = {
            a: float(meta["learned_share"].get(a, 0.0)) for a in self.actions
        }

    @classmethod
    def load(cls, directory: str | Path) -> UpliftModel | None:
        directory = Path(directory)
        path = directory / "uplift.json"
        if not path.exists():
            return None
        meta = json.loads(path.read_text())
        boosters = {arm: lgb.Booster(model_file=str(directory / f"{arm}.txt")) for arm in meta["arms"]}
        return cls(meta, boosters)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for arm, booster in self.boosters.items():
            booster.save_model(str(directory / f"{arm}.txt"))
        (directory / "uplift.json").write_text(
            json.dumps(self.meta | {"arms": list(self.boosters)}, indent=2)
        )
        return directory

    def learned(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """P(churn | control) - P(churn | action) per action that has an offset of its own."""
        linear = self.meta.get("linear")
        if BASE not in self.boosters or not linear:
            return {}
        # as if chosen at random (the exploration's view): the list is not the bank's old targeting
        base = self.boosters[BASE].predict(np.column_stack([x, np.zeros(len(x))]), raw_score=True)
        z = standardise(
            x[:, [self.feature_index[n] for n in linear["features"]]], (linear["mean"], linear["scale"])
        )
        offsets = linear["offsets"]
        contact = base + apply_offset(z, offsets[CONTACT])
        control = _sigmoid(base)
        return {
            a: control - _sigmoid(contact + apply_offset(z, offsets[a])) for a in self.actions if a in offsets
        }

    def uplift(
        self, x: np.ndarray, probability: np.ndarray, effects: dict[str, float]
    ) -> dict[str, np.ndarray]:
        """Per action: the learned uplift shrunk toward the playbook's `probability x effect`.
        Actions without a model (or without evidence) get the playbook's figure alone."""
        learned = self.learned(x)
        out = {}
        for action, effect in effects.items():
            prior = probability * float(effect)
            share = self.learned_share.get(action, 0.0) if action in learned else 0.0
            out[action] = share * learned[action] + (1.0 - share) * prior if share > 0 else prior
        return out


__all__ = ["BASE", "CONTACT", "CONTROL", "UpliftModel"]
