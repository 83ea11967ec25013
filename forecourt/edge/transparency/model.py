"""A transparency report's figures: the period, the raw facts read, and the published report.

Pure data and pure functions: no database, no clock, no file. :class:`PeriodFacts` is what the
repository counted in the edge database (exact, never published as such);
:func:`build_report` turns it into a :class:`TransparencyReport`, the only thing renderers see.

Publishing rules, enforced here so every format (HTML, JSON, PDF) obeys them alike:

* **Aggregates only.** Nothing in a report names a car (VIN), a customer (reference or
  pseudonym) or an operator (id, username, display name): operators appear only as counts per
  role. The ledger checkpoint is published as the log's signed note (origin, size, root hash,
  signature), which names none of them either.
* **k-anonymity, k = 5** (:data:`K_ANONYMITY`). A per-category cell (a refusal reason, a
  feature, a data category, a role, a review kind, an anomaly code) counting 1 to 4 people or
  events is shown as ``"< 5"``; zero is shown as 0 (it says nothing about anyone). Where a group
  publishes its total and exactly one of its cells is suppressed, the smallest other non-zero cell
  is suppressed too, so the hidden cell cannot be recovered as total minus the rest
  (complementary suppression). Headline totals (activations done, refused, failed) are exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from forecourt.core import ComplianceProfile, ConsentMode, DataCategory
from forecourt.edge.anomaly import RecentEvents, Thresholds, evaluate

#: The smallest count a per-category cell publishes; smaller non-zero counts read "< 5".
K_ANONYMITY: Final = 5
SUPPRESSED_TEXT: Final = f"< {K_ANONYMITY}"
#: Version of the JSON document (``schema``); bumped on any incompatible change.
SCHEMA_VERSION: Final = "forecourt.transparency-report/1"
#: The longest period one report covers (a year, leap day included).
MAX_PERIOD_DAYS: Final = 366


class PeriodError(ValueError):
    """The period asked for is not a usable ``[start, end)`` range of days."""


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in whole UTC days: ``end`` is the first day *not* covered."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise PeriodError(f"the period ends ({self.end}) on or before it starts ({self.start})")
        if (self.end - self.start).days > MAX_PERIOD_DAYS:
            raise PeriodError(f"a report covers at most {MAX_PERIOD_DAYS} days")

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(0), UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end, time(0), UTC)

    @property
    def label(self) -> str:
        last = self.end - timedelta(days=1)
        return f"{self.start.isoformat()} – {last.isoformat()}"

    @classmethod
    def parse(cls, start: str, end: str) -> Period:
        """From ISO dates (``YYYY-MM-DD``); raises :class:`PeriodError` naming the bad one."""
        return cls(_date(start, "start"), _date(end, "end"))


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise PeriodError(f"the {what} {text!r} is not a date (YYYY-MM-DD)") from exc


def last_full_quarter(today: date) -> Period:
    """The calendar quarter before the one ``today`` is in (the default report period)."""
    first_month = 3 * ((today.month - 1) // 3) + 1
    this_quarter = date(today.year, first_month, 1)
    if first_month == 1:
        return Period(date(today.year - 1, 10, 1), this_quarter)
    return Period(date(today.year, first_month - 3, 1), this_quarter)


# -- what the repository counts (exact, internal) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoleActivity:
    """What the operators holding one role did in the period (their current role)."""

    sign_ins: int = 0
    activations_started: int = 0
    consent_answers_recorded: int = 0
    reviews_requested: int = 0
    reviews_decided: int = 0


@dataclass(frozen=True, slots=True)
class CheckpointFacts:
    """The edge ledger's signed checkpoint that backs the figures (see :func:`build_report`)."""

    origin: str
    size: int
    root_hash_b64: str
    note: str
    issued_at: datetime
    #: Issued at or after the period's end, so every entry of the period is in its tree.
    covers_period_end: bool


@dataclass(frozen=True, slots=True)
class PeriodFacts:
    """Exact counts for one dealer and one period, as read from the edge database."""

    dealer_id: str
    period: Period
    #: Workflows that ended in the period, by terminal state (done, refused, failed, cancelled).
    outcomes: Mapping[str, int] = field(default_factory=dict)
    refusals_by_code: Mapping[str, int] = field(default_factory=dict)
    #: Features of the activations that ended ``done`` in the period.
    features_enabled: Mapping[str, int] = field(default_factory=dict)
    grants_by_category: Mapping[str, int] = field(default_factory=dict)
    #: A ``denied`` row after a ``granted`` one for the same car and category.
    withdrawals_by_category: Mapping[str, int] = field(default_factory=dict)
    #: A ``denied`` row with no grant before it (the customer said no from the start).
    refusals_by_category: Mapping[str, int] = field(default_factory=dict)
    #: Withdrawals by the state of the ``consent.recorded`` message that carries them to the
    #: cloud: ``propagated`` (acknowledged), ``pending`` (queued or retrying), ``failed`` (dead).
    withdrawal_propagation: Mapping[str, int] = field(default_factory=dict)
    cross_border: Mapping[str, int] = field(default_factory=dict)
    notice_versions_answered: tuple[str, ...] = ()
    activity_by_role: Mapping[str, RoleActivity] = field(default_factory=dict)
    reviews_requested_by_kind: Mapping[str, int] = field(default_factory=dict)
    reviews_decided: Mapping[str, int] = field(default_factory=dict)
    #: Activations and offline uses of the period, for the anomaly rules (never published).
    events: RecentEvents = field(default_factory=RecentEvents)
    checkpoint: CheckpointFacts | None = None


@dataclass(frozen=True, slots=True)
class ProfileInForce:
    """The compliance profile the store works under, and the cloud's version number of it."""

    profile: ComplianceProfile
    version: int | None = None


# -- what is published -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One published count: ``value`` None when suppressed (fewer than k, or complementary)."""

    value: int | None

    @property
    def suppressed(self) -> bool:
        return self.value is None

    @property
    def display(self) -> str:
        return SUPPRESSED_TEXT if self.value is None else str(self.value)

    def to_json(self) -> dict[str, object]:
        return {"value": self.value, "display": self.display, "suppressed": self.suppressed}


@dataclass(frozen=True, slots=True)
class Row:
    """A labelled line of cells (one per column of its table)."""

    label: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table of rows; ``columns`` name the cells, after the label column."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    note: str = ""

    def column(self, index: int) -> dict[str, Cell]:
        return {r.label: r.cells[index] for r in self.rows}

    def to_json(self) -> dict[str, object]:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [
                {
                    "label": r.label,
                    **{c: cell.to_json() for c, cell in zip(self.columns, r.cells, strict=True)},
                }
                for r in self.rows
            ],
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class CategoryProcessing:
    """One data category: how the market lets it be processed, and why the car processes it."""

    category: str
    mode: str
    processed: bool
    default_on: bool
    separate_consent: bool
    purpose: str


@dataclass(frozen=True, slots=True)
class ProfileSection:
    market: str
    residency: str
    version: int | None
    notice_version: str
    notice_versions_answered: tuple[str, ...]
    retention_days: int
    cross_border_mode: str
    categories: tuple[CategoryProcessing, ...]


@dataclass(frozen=True, slots=True)
class LedgerSection:
    """The checkpoint a reader verifies the figures against (``forecourt ledger verify``)."""

    origin: str
    tree_size: int
    root_hash_b64: str
    issued_at: datetime
    covers_period_end: bool
    signed_note: str


@dataclass(frozen=True, slots=True)
class TransparencyReport:
    """Everything a report publishes, in the order the renderers show it."""

    dealer_id: str
    period: Period
    generated_at: datetime
    k_anonymity: int
    activation_totals: Mapping[str, int]
    refusals: Table
    features: Table
    consent: Table
    withdrawal_propagation: Table
    cross_border: Table
    profile: ProfileSection
    operators: Table
    reviews_requested: Table
    reviews_decided: Mapping[str, int]
    anomalies: Table
    ledger: LedgerSection | None

    @property
    def tables(self) -> tuple[Table, ...]:
        return (
            self.refusals,
            self.features,
            self.consent,
            self.withdrawal_propagation,
            self.cross_border,
            self.operators,
            self.reviews_requested,
            self.anomalies,
        )


# -- building ------------------------------------------------------------------------------------

OUTCOMES: Final = ("done", "refused", "failed", "cancelled")
PROPAGATION_STATES: Final = ("propagated", "pending", "failed")
DECISIONS: Final = ("approved", "rejected", "expired")
_ROLE_COLUMNS: Final = (
    "sign-ins",
    "activations started",
    "consent answers recorded",
    "reviews requested",
    "reviews decided",
)


def suppress(counts: Iterable[int], *, total_published: bool = True) -> tuple[Cell, ...]:
    """Cells for one group of counts with the k-anonymity rule (module docstring) applied."""
    values = list(counts)
    hidden = {i for i, v in enumerate(values) if 0 < v < K_ANONYMITY}
    if total_published and len(hidden) == 1:
        others = [(v, i) for i, v in enumerate(values) if v > 0 and i not in hidden]
        if others:
            hidden.add(min(others)[1])
    return tuple(Cell(None if i in hidden else v) for i, v in enumerate(values))


def _single_column(
    key: str,
    title: str,
    column: str,
    counts: Mapping[str, int],
    *,
    total_published: bool = True,
) -> Table:
    labels = sorted(counts)
    cells = suppress((counts[label] for label in labels), total_published=total_published)
    return Table(
        key,
        title,
        (column,),
        tuple(Row(lb, (c,)) for lb, c in zip(labels, cells, strict=True)),
    )


def _consent_table(facts: PeriodFacts) -> Table:
    categories = sorted(
        set(facts.grants_by_category)
        | set(facts.withdrawals_by_category)
        | set(facts.refusals_by_category)
    )
    columns = ("grants", "withdrawals", "refusals")
    sources = (
        facts.grants_by_category,
        facts.withdrawals_by_category,
        facts.refusals_by_category,
    )
    by_column = [suppress(src.get(c, 0) for c in categories) for src in sources]
    rows = tuple(
        Row(category, tuple(col[i] for col in by_column)) for i, category in enumerate(categories)
    )
    return Table(
        "consent",
        "Consent answers by data category",
        columns,
        rows,
        "A withdrawal is a refusal recorded after a grant for the same car and category; a "
        "refusal is a first answer of no.",
    )


def _operators_table(facts: PeriodFacts) -> Table:
    roles = sorted(facts.activity_by_role)
    activity = [facts.activity_by_role[r] for r in roles]
    fields = (
        [a.sign_ins for a in activity],
        [a.activations_started for a in activity],
        [a.consent_answers_recorded for a in activity],
        [a.reviews_requested for a in activity],
        [a.reviews_decided for a in activity],
    )
    by_column = [suppress(values) for values in fields]
    rows = tuple(
        Row(role.replace("_", " "), tuple(col[i] for col in by_column))
        for i, role in enumerate(roles)
    )
    return Table(
        "operators",
        "Operator activity by role",
        _ROLE_COLUMNS,
        rows,
        "Counts per role only, by each operator's role when the report was made; no operator "
        "is named.",
    )


def _profile_section(
    profile: ProfileInForce, facts: PeriodFacts, purposes: Mapping[str, str]
) -> ProfileSection:
    p = profile.profile
    categories = []
    for category in DataCategory:
        rule = p.rule(category)
        categories.append(
            CategoryProcessing(
                category=category.value,
                mode=rule.mode.value,
                processed=rule.mode is not ConsentMode.FORBIDDEN,
                default_on=rule.default_on,
                separate_consent=rule.separate_consent,
                purpose=purposes.get(category.value, ""),
            )
        )
    return ProfileSection(
        market=p.market.value,
        residency=p.residency.value,
        version=profile.version,
        notice_version=p.notice_version,
        notice_versions_answered=facts.notice_versions_answered,
        retention_days=p.retention_days,
        cross_border_mode=p.cross_border_mode.value,
        categories=tuple(categories),
    )


def _anomalies(facts: PeriodFacts, thresholds: Thresholds) -> Table:
    """The anomaly rules replayed over the period's events (sign-in counters are not history)."""
    period = facts.period
    # The rules count (now - lookback, now]; this makes it the period's [start, end).
    now = period.end_at - timedelta(microseconds=1)
    window = replace(thresholds, lookback=period.end_at - period.start_at)
    events = RecentEvents(facts.events.activations, (), facts.events.offline_uses)
    counts: dict[str, int] = {}
    for anomaly in evaluate(events, window, now):
        counts[anomaly.code.value] = counts.get(anomaly.code.value, 0) + 1
    cells = suppress((counts[c] for c in sorted(counts)), total_published=False)
    return Table(
        "anomalies",
        "Anomaly warnings raised",
        ("warnings",),
        tuple(Row(c, (cell,)) for c, cell in zip(sorted(counts), cells, strict=True)),
        "The edge's anomaly rules replayed over the period's activations and offline uses; "
        "sign-in failures are kept as a live counter, not a history, and are not included.",
    )


def build_report(
    facts: PeriodFacts,
    profile: ProfileInForce,
    *,
    generated_at: datetime,
    purposes: Mapping[str, str],
    thresholds: Thresholds | None = None,
) -> TransparencyReport:
    """The publishable report for ``facts``: aggregates only, small cells suppressed."""
    outcomes = {o: int(facts.outcomes.get(o, 0)) for o in OUTCOMES}
    decided = {d: int(facts.reviews_decided.get(d, 0)) for d in DECISIONS}
    checkpoint = facts.checkpoint
    return TransparencyReport(
        dealer_id=facts.dealer_id,
        period=facts.period,
        generated_at=generated_at,
        k_anonymity=K_ANONYMITY,
        activation_totals=outcomes,
        refusals=_single_column(
            "refusals", "Refused activations by reason", "refusals", facts.refusals_by_code
        ),
        # One activation may enable several features: no total of this column is published.
        features=_single_column(
            "features",
            "Features enabled",
            "activations",
            facts.features_enabled,
            total_published=False,
        ),
        consent=_consent_table(facts),
        withdrawal_propagation=Table(
            "withdrawal_propagation",
            "Withdrawals passed on to the carmaker",
            ("withdrawals",),
            tuple(
                Row(state, (cell,))
                for state, cell in zip(
                    PROPAGATION_STATES,
                    suppress(facts.withdrawal_propagation.get(s, 0) for s in PROPAGATION_STATES),
                    strict=True,
                )
            ),
            "propagated: acknowledged by the carmaker's cloud; pending: queued or retrying; "
            "failed: refused by the cloud and kept for follow-up.",
        ),
        cross_border=Table(
            "cross_border",
            "Cross-border transfer choices",
            ("answers",),
            tuple(
                Row(choice, (cell,))
                for choice, cell in zip(
                    ("granted", "denied"),
                    suppress(facts.cross_border.get(c, 0) for c in ("granted", "denied")),
                    strict=True,
                )
            ),
        ),
        profile=_profile_section(profile, facts, purposes),
        operators=_operators_table(facts),
        reviews_requested=_single_column(
            "reviews_requested",
            "Dual reviews requested by kind",
            "requests",
            facts.reviews_requested_by_kind,
        ),
        reviews_decided=decided,
        anomalies=_anomalies(facts, thresholds or Thresholds()),
        ledger=None
        if checkpoint is None
        else LedgerSection(
            origin=checkpoint.origin,
            tree_size=checkpoint.size,
            root_hash_b64=checkpoint.root_hash_b64,
            issued_at=checkpoint.issued_at,
            covers_period_end=checkpoint.covers_period_end,
            signed_note=checkpoint.note,
        ),
    )
