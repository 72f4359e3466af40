"""One simulated month of the bank: life events, service, maturities, decisions, money, contacts.

`Bank.step(m)` advances every customer by one month, vectorised over customers. The state is
mutable and private to `features.generator.generate_bank`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.bank.causes import CAUSE_INDEX, NO_CAUSE, CauseModel, Signals, death_probability
from features.bank.contacts import EXPLORATION_SHARE, run_campaign
from features.bank.flows import adopt_products, emit_interactions, emit_month_flows
from features.bank.population import Population
from features.bank.response import EFFECT_MONTHS, contact_effect, win_back_probability
from features.bank.state import (
    ACTIVE,
    CLOSED,
    DRAINING,
    NEVER,
    NOT_JOINED,
    PRODUCTS,
    SILENT,
    Events,
    Holdings,
    P,
    codes,
)
from features.schema import COMPLAINT_CATEGORIES, FEE_COMPLAINT, TRANSACTION_CATEGORIES, TRANSACTION_CHANNELS

MAX_COMPLAINTS = 4  # a month's complaints per customer (a Poisson rate well under one)


def poisson_quantile(u: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Poisson counts by inversion of given uniforms: each count depends on its own draw only."""
    from scipy.special import pdtr

    count = np.zeros(len(u), dtype=np.int64)
    for k in range(MAX_COMPLAINTS):
        count += u > pdtr(k, rate)
    return count


class Bank:
    """The state of every customer, and the events written so far."""

    def __init__(
        self,
        rng: np.random.Generator,
        pop: Population,
        holdings: Holdings,
        month_start_days: np.ndarray,
        balances: dict[str, np.ndarray],
        gap: np.ndarray,
        causes: CauseModel,
        activity: float,
        scenario: str | None,
        drift_from: int,
        exploration_share: float = EXPLORATION_SHARE,
    ):
        n = pop.n
        self.rng, self.pop, self.holdings, self.days = rng, pop, holdings, month_start_days
        self.events = Events()
        self.gap, self.causes, self.activity = gap, causes, activity
        self.scenario, self.drift_from = scenario, drift_from
        self.exploration_share = exploration_share
        self.deposits, self.investments = balances["deposits"], balances["investments"]
        self.mortgage, self.loan = balances["mortgage"], balances["loan"]
        already = pop.join_month < 0
        self.status = np.where(already, ACTIVE, NOT_JOINED)
        self.payroll = pop.declared_payroll & already
        self.pension = np.zeros(n, dtype=bool)
        self.salary_moved_month = np.full(n, NEVER)
        self.lapsed_month = np.full(n, NEVER)
        self.moved_month = np.full(n, NEVER)
        self.retired_month = np.full(n, NEVER)
        self.hardship_month = np.full(n, NEVER)
        self.died_month = np.full(n, NEVER)
        self.engagement = np.ones(n)
        self.drain_left = np.zeros(n, dtype=np.int64)
        self.decided_month = np.full(n, -1)
        self.decided_mode = np.full(n, "", dtype=object)
        self.cause = np.full(n, NO_CAUSE)
        self.won_back_month = np.full(n, NEVER)  # the last time a contact reversed a decision to leave
        self.won_back_cause = np.full(n, NO_CAUSE)
        self.contact_month = np.full(n, NEVER)
        self.contact_reached = np.zeros(n, dtype=bool)
        self.contact_action = np.full(n, -1)  # index into response.ACTIONS of the last contact
        # the bank's own monthly campaigns; a simulation of a list turns them off
        self.campaigns = True
        # when set, every part of a month draws from its own stream seeded by (*streams, month,
        # part): two continuations of one state stay on common random numbers part by part
        self.streams: tuple[int, ...] | None = None
        self.cc_application_month = np.full(n, NEVER)
        self.mortgage_opened_month = np.full(n, NEVER)
        self.lapses = np.zeros(n, dtype=bool)
        # complaints and incidents so far: (customer, filed day, resolved day, is about fees)
        self.complaints: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.incidents: list[tuple[np.ndarray, np.ndarray]] = []
        self.fees_by_month: list[np.ndarray] = []
        self.last_hazard = np.zeros(n)
        self.bereavement_told = np.zeros(n, dtype=bool)

    @property
    def n(self) -> int:
        return self.pop.n

    def span(self, m: int) -> tuple[int, int, int]:
        ms, me = self.days[m], self.days[m + 1]
        return ms, me, me - ms

    # -- the month --------------------------------------------------------------------------------
    def step(self, m: int) -> None:
        service: dict[str, np.ndarray] = {}
        parts = (
            lambda: self._join(m),
            lambda: self._life_events(m),
            lambda: self._engagement_and_salary(m),
            lambda: service.update(self._service(m)),
            lambda: self._maturities(m),
            # the month's campaign goes out at its start: its contacts work from this month on
            lambda: self._contact(m) if self.campaigns else None,
            lambda: self._win_back(m),
            lambda: self._decide(m, service),
            lambda: emit_month_flows(self, m),
            lambda: emit_interactions(self, m, service),
            lambda: self._adopt(m),
            lambda: self._finish_leaving(m),
            lambda: self._month_end(m),
        )
        for k, part in enumerate(parts):
            if self.streams is not None:
                self.rng = np.random.default_rng((*self.streams, m, k))
            part()

    def _join(self, m: int) -> None:
        rng, pop = self.rng, self.pop
        joiners = np.flatnonzero(pop.join_month == m)
        self.holdings.open(joiners, P["current_account"], pop.join_day[joiners])
        savers = joiners[rng.random(joiners.size) < 0.3]
        self.holdings.open(savers, P["savings"], pop.join_day[savers])
        self.status[joiners] = ACTIVE
        self.payroll[joiners] = pop.declared_payroll[joiners]
        self.deposits[joiners] = pop.income[joiners] * rng.uniform(0.3, 1.5, joiners.size)

    def _life_events(self, m: int) -> None:
        """Moves, retirements, hardship and deaths: the circumstances behind natural churn."""
        rng, pop, n = self.rng, self.pop, self.n
        alive = (self.status == ACTIVE) | (self.status == DRAINING)
        age = pop.age(pd.Timestamp(self.days[m], unit="D").year)
        draws = rng.random((4, n))
        moves = alive & (draws[0] < 0.0035 * np.where(age < 35, 2.0, np.where(age < 60, 1.0, 0.5)))
        self.moved_month[moves] = m
        retires = (
            alive
            & (self.retired_month == NEVER)
            & (age >= pop.retirement_age)
            & (age < pop.retirement_age + 1)
        ) & (draws[1] < 1 / 12)
        self.retired_month[retires] = m
        stops = retires & self.payroll
        self.payroll[stops], self.pension[retires] = False, True
        low_income = pop.income_band <= 1
        owes = (self.loan > 0) | (self.mortgage > 0) | self.holdings.held(P["credit_card"])
        hardship = (  # debt is what turns an income shock into hardship the bank sees
            alive
            & owes
            & (self.hardship_month < m - 12)
            & (draws[2] < 0.002 * np.where(low_income, 2.5, 1.0))
        )
        self.hardship_month[hardship] = m
        dies = alive & (self.died_month == NEVER) & (draws[3] < death_probability(age))
        self.died_month[dies] = m
        self.payroll[dies], self.pension[dies] = False, False

    def _engagement_and_salary(self, m: int) -> None:
        rng, n = self.rng, self.n
        present = (self.status == ACTIVE) | (self.status == DRAINING)
        self.engagement *= np.exp(rng.normal(-0.005, 0.07, n))
        shock = present & (rng.random(n) < 0.01)
        self.engagement[shock] *= rng.uniform(0.3, 0.7, n)[shock]
        self.engagement = np.clip(self.engagement, 0.02, 2.0)
        self.engagement[self.died_month != NEVER] = 0.02
        # a new employer pays elsewhere: the salary moves (and often the main banking with it)
        working = (self.status == ACTIVE) & (self.retired_month == NEVER)
        moves = working & self.payroll & (rng.random(n) < 0.010)
        self.payroll[moves] = False
        self.salary_moved_month[moves] = m
        comes = working & ~self.payroll & ~self.pop.declared_payroll & (rng.random(n) < 0.004)
        self.payroll[comes] = True

    def _service(self, m: int) -> dict[str, np.ndarray]:
        """Complaints (filed this month; some resolved after days or weeks, some never) and
        service incidents; returns this month's complaint and incident rows and the counts."""
        rng, n, pop = self.rng, self.n, self.pop
        ms, me, length = self.span(m)
        present = (self.status == ACTIVE) | (self.status == DRAINING)
        outage = self.scenario == "app_outage" and m >= self.drift_from
        # each draw below is made for every customer (and up to MAX_COMPLAINTS complaints each) from
        # its own stream, so one customer's changed state moves nobody else's complaints
        incident_rng, count_rng, detail_rng, day_rng = rng.spawn(4)
        incidents = incident_rng.poisson(pop.incident_rate * (4.0 if outage else 1.0)) * present
        i_rows = np.repeat(np.arange(n), incidents)
        i_day = ms + day_rng.integers(0, length, i_rows.size)
        self.incidents.append((i_rows, i_day))
        # incidents breed complaints; a draining customer complains more
        rate = pop.complaint_rate * (1 + 0.5 * (self.status == DRAINING)) + 0.05 * np.bincount(
            i_rows, minlength=n
        )
        count = np.minimum(poisson_quantile(count_rng.random(n), rate), MAX_COMPLAINTS) * present
        slots = np.arange(MAX_COMPLAINTS)[None, :] < count[:, None]
        c_rows = np.nonzero(slots)[0]
        filed = ms + detail_rng.integers(0, length, (n, MAX_COMPLAINTS))
        open_days = detail_rng.integers(2, 90, (n, MAX_COMPLAINTS))
        never = detail_rng.random((n, MAX_COMPLAINTS))[slots] < 0.30
        category = detail_rng.choice(
            len(COMPLAINT_CATEGORIES), (n, MAX_COMPLAINTS), p=[0.22, 0.30, 0.14, 0.14, 0.08, 0.12]
        )[slots]
        c_filed = filed[slots]
        c_resolved = np.where(never, np.iinfo(np.int64).max, c_filed + open_days[slots])
        fee = category == COMPLAINT_CATEGORIES.index(FEE_COMPLAINT)
        self.complaints.append((c_rows, c_filed, c_resolved, fee))
        who = np.concatenate([c[0] for c in self.complaints])
        filed = np.concatenate([c[1] for c in self.complaints])
        resolved = np.concatenate([c[2] for c in self.complaints])
        about_fees = np.concatenate([c[3] for c in self.complaints])
        open_now = (filed < me) & (resolved >= me)
        recent = (filed < me) & (filed >= me - 90)
        all_incidents = np.concatenate([i[0] for i in self.incidents[-3:]])
        return {
            "complaint_rows": c_rows,
            "complaint_filed": c_filed,
            "complaint_resolved": c_resolved,
            "complaint_category": category,
            "incident_rows": i_rows,
            "incident_day": i_day,
            "unresolved_service": np.bincount(who, weights=open_now & ~about_fees, minlength=n),
            "recent_service": np.bincount(who, weights=recent & ~about_fees, minlength=n),
            "unresolved_fee": np.bincount(who, weights=open_now & about_fees, minlength=n),
            "recent_fee": np.bincount(who, weights=recent & about_fees, minlength=n),
            "incidents_90d": np.bincount(all_incidents, minlength=n),
        }

    def _maturities(self, m: int) -> None:
        """Term deposits maturing this month: renewed, or released (the rate gap and a
        customer's rate sensitivity make a lapse likelier)."""
        rng, n, pop = self.rng, self.n, self.pop
        ms, me, _ = self.span(m)
        present = (self.status == ACTIVE) | (self.status == DRAINING)
        maturity = self.holdings.maturity_of(P["term_deposit"])
        maturing = present & (maturity >= ms) & (maturity < me)
        renew_p = np.clip(
            0.75 - 0.30 * pop.rate_sensitivity * self.gap[m, pop.region] - 0.5 * (self.status == DRAINING),
            0.05,
            0.95,
        )
        renews = maturing & (rng.random(n) < renew_p)
        self.lapses = maturing & ~renews
        idx = np.flatnonzero(maturing)
        self.holdings.close(idx, P["term_deposit"], maturity[idx])
        idx = np.flatnonzero(renews)
        self.holdings.open(idx, P["term_deposit"], maturity[idx], term_days=365)
        self.lapsed_month[self.lapses] = m

    def _decide(self, m: int, service: dict[str, np.ndarray]) -> None:
        """The cause hazards, who decides to leave, and why; the estates of the dead close."""
        rng, n, pop = self.rng, self.n, self.pop
        ms, _, _ = self.span(m)
        in_effect = (
            self.contact_reached & (m >= self.contact_month) & (m - self.contact_month < EFFECT_MONTHS)
        )
        effect = contact_effect(pop.uplift_type, self.contact_action, in_effect)
        fees_90d = sum(self.fees_by_month[-3:]) if self.fees_by_month else np.zeros(n)
        signals = Signals(
            unresolved_service=service["unresolved_service"],
            recent_service=service["recent_service"],
            unresolved_fee=service["unresolved_fee"],
            recent_fee=service["recent_fee"],
            fees_charged_90d=fees_90d,
            incidents_90d=service["incidents_90d"],
            competitor_pressure=pop.rate_sensitivity * self.gap[m, pop.region],
            lapsed_recently=(m - self.lapsed_month) <= 3,
            salary_moved_recently=(m - self.salary_moved_month) <= 6,
            moved_recently=(m - self.moved_month) <= 3,
            branch_customer=~pop.digital,
            retired_recently=(m - self.retired_month) <= 9,
            hardship_recently=(m - self.hardship_month) <= 6,
            products_held=self.holdings.count_held(),
            short_tenure=(ms - pop.join_day) / 365.25 < 2,
            contact_effect=effect,
        )
        hazards = self.causes.hazards(signals, rng.normal(0, 0.35, n))
        self.last_hazard = 1.0 - np.prod(1.0 - hazards, axis=1)  # what the bank's own targeting sees, noisily
        active = self.status == ACTIVE
        decides, cause = self.causes.decide(rng, hazards, active & (self.died_month == NEVER))
        died = active & (self.died_month == m)
        decides |= died
        cause[died] = CAUSE_INDEX["DECEASED"]
        self.cause[decides] = cause[decides]
        self.decided_month[decides] = m
        # drawn for every customer and taken for the deciders, so that one customer's decision does
        # not move anyone else's draws (a simulated list's two continuations stay comparable)
        drain_left = rng.choice([1, 2, 3], n, p=[0.3, 0.4, 0.3])
        self.drain_left[decides] = drain_left[decides]
        small = (self.deposits + self.investments) < 1500
        draws = rng.random((2, n))[:, decides]
        closes = draws[0] < np.where(small[decides], 0.85, 0.6)
        closes |= died[decides] | (cause[decides] == CAUSE_INDEX["MOVED_AWAY"]) & (draws[1] < 0.6)
        self.decided_mode[decides] = np.where(closes, "closed", "silent")
        self.status[decides] = DRAINING
        present = np.flatnonzero((self.status == ACTIVE) | (self.status == DRAINING))
        self.events.add(
            "hz",
            customer=present,
            month=np.full(present.size, m),
            hazard=self.last_hazard[present],
        )

    def _win_back(self, m: int) -> None:
        """Draining customers reached by this month's contact: some change their mind and stay."""
        caught = np.flatnonzero(
            (self.status == DRAINING)
            & self.contact_reached
            & (self.contact_month == m)
            & (self.died_month == NEVER)
        )
        p = win_back_probability(
            self.pop.uplift_type[caught], self.contact_action[caught], self.cause[caught]
        )
        won = caught[self.rng.random(self.n)[caught] < p]
        self.won_back_month[won] = m
        self.won_back_cause[won] = self.cause[won]
        self.status[won] = ACTIVE
        self.drain_left[won] = 0
        self.decided_month[won] = -1
        self.decided_mode[won] = ""
        self.cause[won] = NO_CAUSE

    def _adopt(self, m: int) -> None:
        adopt_products(self, m)

    def _contact(self, m: int) -> None:
        run_campaign(self, m)

    def _finish_leaving(self, m: int) -> None:
        """Leavers finish draining: close every product (the last money leaves with the closing
        transfer), or keep an empty account."""
        rng, n, holdings = self.rng, self.n, self.holdings
        ms, _, length = self.span(m)
        draining = self.status == DRAINING
        self.drain_left[draining] -= 1
        finished = draining & (self.drain_left <= 0)
        # the salary moves with the switch, when the account is closed or emptied (the cause only
        # for SALARY_MOVED, whose salary moved months before)
        self.payroll[finished] = False
        closes = finished & (self.decided_mode == "closed")
        close_day = ms + rng.integers(length // 2, length, n)
        idx = np.flatnonzero(closes)
        holdings.close_all(idx, close_day[idx])
        self.mortgage[closes] = self.loan[closes] = 0.0
        leftover = np.where(closes, self.deposits + self.investments, 0.0)
        rows = np.flatnonzero(leftover > 0.5)
        self.events.add(
            "tx",
            customer=rows,
            ts=close_day[rows] * 86400 - rng.integers(3600, 86400, rows.size),
            amount=np.round(leftover[rows], 2),
            category=codes("transfer_out_external", TRANSACTION_CATEGORIES, rows.size),
            channel=codes(np.where(self.pop.digital[rows], "online", "branch"), TRANSACTION_CHANNELS),
        )
        self.deposits[closes] = self.investments[closes] = 0.0
        self.status[closes] = CLOSED
        self.status[finished & (self.decided_mode == "silent")] = SILENT

    def _month_end(self, m: int) -> None:
        _, me, _ = self.span(m)
        has_account = np.isin(self.status, (ACTIVE, DRAINING, SILENT))
        rows = np.flatnonzero(has_account)
        self.events.add(
            "bal",
            customer=rows,
            month_end=np.full(rows.size, me - 1),
            deposits=np.round(np.maximum(self.deposits[rows], 0), 2),
            investments=np.round(self.investments[rows], 2),
            loans=np.round(self.mortgage[rows] + self.loan[rows], 2),
        )


__all__ = ["ACTIVE", "CLOSED", "DRAINING", "NEVER", "PRODUCTS", "SILENT", "Bank"]
