"""The bank's own retention campaigns, as a bank that wants to learn would run them.

Each month the bank contacts the customers its own (imperfect) risk view ranks highest, 2% of
the active book (a customer already draining money out is in the book and ranks higher), with
actions chosen by its habits rather than by cause; a random 20% of each campaign is held back as
a control group (recorded, never contacted).

Its test-and-learn programme (exploration) draws another 2% of the book each month (the bank's
`exploration_share`) across all
risk levels, the riskier more often (inclusion rises with the fourth power of the customer's
risk rank among the rest, so the top of the rest is drawn about five times as often as the
average and the bottom almost never: the list works at the top, so that is where what each action
does must be learned), gives each drawn customer a random action and holds back a random half of
the draw as its control group. How a customer came to be drawn does not matter to the comparison:
inside the draw, contacted or not is a coin flip (propensity 0.5), so what each action does for
whom can be learned without the bank's targeting in the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from features.bank.response import ACTIONS
from features.bank.state import ACTIVE, DRAINING, NEVER
from features.schema import NO_ACTION

if TYPE_CHECKING:
    from features.bank.months import Bank

# the playbook's actions (configs/default.yaml), the channel each goes out by, and how often the
# bank's campaigns used it before this product
ACTION_CHANNELS = {
    "relationship_manager_visit": "branch",
    "service_recovery_call": "phone",
    "rate_offer": "phone",
    "payroll_incentive": "email",
    "digital_reengagement": "sms",
    "retention_call": "phone",
    "keep_foothold": "email",
    "hardship_support": "phone",
}
CAMPAIGN_MIX = {
    "relationship_manager_visit": 0.05,
    "service_recovery_call": 0.10,
    "rate_offer": 0.35,
    "payroll_incentive": 0.05,
    "digital_reengagement": 0.15,
    "retention_call": 0.28,
    "keep_foothold": 0.01,
    "hardship_support": 0.01,
}
assert tuple(ACTION_CHANNELS) == ACTIONS, "one list of actions for campaigns and responses"
TARGETED_SHARE = 0.02
DRAIN_SEEN = 3.0  # log-odds the bank's own risk view adds for a customer whose money is leaving
CONTROL_SHARE = 0.20  # of each targeted campaign, held back
EXPLORATION_SHARE = 0.02  # of the book drawn each month for test-and-learn (the default; a bank's own
# is `generate_bank(exploration_share=...)`, kept in its manifest)
EXPLORATION_TILT = 4.0  # inclusion ~ (risk rank among the rest) ** tilt
EXPLORATION_CONTROL = 0.5  # of the exploration draw, held back
ACCEPT = np.array(
    [0.55, 0.35, 0.08, 0.15]
)  # by uplift type: persuadable, sure thing, lost cause, sleeping dog


def _inclusion(size: int, expected: float) -> np.ndarray:
    """Each of `size` customers' chance to be drawn, in the order of the bank's risk view (riskiest
    first): rising with the risk rank to the power EXPLORATION_TILT, `expected` drawn in all."""
    if size == 0:
        return np.zeros(0)
    rank = 1.0 - (np.arange(size) + 0.5) / size  # 1 for the riskiest of the rest, 0 for the least
    weight = rank**EXPLORATION_TILT
    return np.minimum(1.0, expected * weight / weight.sum())


def run_campaign(bank: Bank, m: int) -> None:
    """This month's campaign: the bank's targets and an exploration draw, each with a control group."""
    rng, pop = bank.rng, bank.pop
    ms, _, length = bank.span(m)
    # a customer already moving money out is still in the book, and the likeliest target
    in_book = (bank.status == ACTIVE) | (bank.status == DRAINING)
    eligible = np.flatnonzero(
        in_book & ~pop.do_not_contact & (m - bank.contact_month >= 3) & (bank.died_month == NEVER)
    )
    view = (
        np.log(np.maximum(bank.last_hazard[eligible], 1e-9))
        + DRAIN_SEEN * (bank.status[eligible] == DRAINING)
        + rng.normal(0, 1.2, eligible.size)
    )
    quota = int(TARGETED_SHARE * (bank.status == ACTIVE).sum())
    order = np.argsort(-view)
    targeted = eligible[order[:quota]]
    rest = eligible[order[quota:]]
    explored = rest[
        rng.random(rest.size) < _inclusion(rest.size, bank.exploration_share * (bank.status == ACTIVE).sum())
    ]
    selected = np.concatenate([targeted, explored])
    habit = rng.choice(len(ACTIONS), targeted.size, p=[CAMPAIGN_MIX[a] for a in ACTIONS])
    random = rng.integers(0, len(ACTIONS), explored.size)
    action = np.array(ACTIONS, dtype=object)[np.concatenate([habit, random])]
    held_back = np.concatenate(
        [np.full(targeted.size, CONTROL_SHARE), np.full(explored.size, EXPLORATION_CONTROL)]
    )
    control = rng.random(selected.size) < held_back
    reached = ~control & (rng.random(selected.size) < 0.7)
    accepted = reached & (rng.random(selected.size) < ACCEPT[pop.uplift_type[selected]])
    outcome = np.where(
        control, "control", np.where(~reached, "not_reached", np.where(accepted, "accepted", "declined"))
    )
    bank.contact_month[selected] = m
    bank.contact_reached[selected] = reached
    bank.contact_action[selected] = np.where(control, -1, np.array([ACTIONS.index(a) for a in action]))
    campaign = np.where(
        np.arange(selected.size) < targeted.size,
        f"RET-{np.datetime64(int(ms), 'D').astype('datetime64[M]')}",
        f"EXP-{np.datetime64(int(ms), 'D').astype('datetime64[M]')}",
    )
    bank.events.add(
        "ct",
        customer=selected,
        ts=(ms + rng.integers(0, min(7, length), selected.size)) * 86400
        + rng.integers(8 * 3600, 18 * 3600, selected.size),
        campaign=campaign.astype(object),
        channel=np.array([ACTION_CHANNELS[a] for a in action], dtype=object),
        action=np.where(control, NO_ACTION, action).astype(object),
        control=control,
        outcome=outcome.astype(object),
    )
