"""The portfolio dashboard: systems by class, tier, stage and site; approvals waiting; reviews coming due."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.classification.engine import AIActClass
from app.db import SessionDep, utcnow
from app.identity.dependencies import CurrentPrincipal
from app.incidents import service as incidents
from app.kpis import service as kpis
from app.systems.models import LifecycleStage, RiskTier
from app.web import charts, lookups, portfolio
from app.web.paths import path_for
from app.web.session import require_csrf
from app.web.templating import label, render

router = APIRouter(dependencies=[Depends(require_csrf)], include_in_schema=False)

REVIEW_WINDOW_DAYS = 30
CLASS_ORDER = [c.value for c in AIActClass]
TIER_ORDER = [t.value for t in reversed(RiskTier)]
STAGE_ORDER = [s.value for s in LifecycleStage]


def _ordered(counts: dict[str, int], order: list[str]) -> list[tuple[str, int]]:
    """Known values in their order (zeros kept, so charts compare), then anything not set."""
    pairs = [(key, counts.get(key, 0)) for key in order]
    if counts.get(portfolio.UNSET):
        pairs.append((portfolio.UNSET, counts[portfolio.UNSET]))
    return pairs


def _age_label(bucket: str) -> str:
    """``0-7d`` -> ``0\u20137 days`` (an en dash), ``90d+`` -> ``90+ days`` (the KPI service's buckets)."""
    if bucket.endswith("d+"):
        return f"{bucket[:-2]}+ days"
    return bucket.removesuffix("d").replace("-", "\u2013") + " days"


@router.get("/dashboard", name="dashboard")
def dashboard(request: Request, session: SessionDep, principal: CurrentPrincipal) -> Response:
    """Where the portfolio stands, for the sites the user may see figures of."""
    sites = principal.require_anywhere("kpi", "read")
    inventory = path_for(request, "inventory")

    def link(**params: str) -> str:
        return f"{inventory}?{urlencode(params)}"

    counts = portfolio.breakdown(session, sites)
    now = utcnow()
    # The full KPI set replays the audit trail and loads every system (seconds at 10,000 systems); the page
    # takes only the cheap figures it shows, from the same functions the KPI endpoint uses.
    pending = kpis.pending_ages(session, sites, now)
    open_incidents = incidents.open_counts(session, sites=sites)
    unset = "Not yet assessed"
    class_chart = charts.bar_chart(
        "Systems by AI Act class",
        [
            charts.Item(
                label(key, "ai_act_class") if key != portfolio.UNSET else unset,
                {f"c-{key}": n},
                link(ai_act_class=key) if key != portfolio.UNSET else None,
            )
            for key, n in _ordered(counts.by_class, CLASS_ORDER)
        ],
    )
    tier_chart = charts.bar_chart(
        "Systems by risk tier (NIST AI RMF)",
        [
            charts.Item(
                label(key, "risk_tier") if key != portfolio.UNSET else unset,
                {f"t-{key}": n},
                link(risk_tier=key) if key != portfolio.UNSET else None,
            )
            for key, n in _ordered(counts.by_tier, TIER_ORDER)
        ],
    )
    stage_chart = charts.bar_chart(
        "Systems by lifecycle stage",
        [
            charts.Item(label(key, "lifecycle_stage"), {f"s-{key}": n}, link(lifecycle_stage=key))
            for key, n in _ordered(counts.by_stage, STAGE_ORDER)
        ],
    )
    class_keys = [*CLASS_ORDER, portfolio.UNSET]
    site_chart = charts.bar_chart(
        "Systems by site and class",
        [
            charts.Item(site, {f"c-{k}": by_class.get(k, 0) for k in class_keys}, link(site=site))
            for site, by_class in sorted(counts.by_site.items())
        ],
        legend=[(f"c-{k}", label(k, "ai_act_class") if k != portfolio.UNSET else unset) for k in class_keys],
    )
    age_chart = charts.bar_chart(
        "Approvals waiting, by age",
        [charts.Item(_age_label(name), {"pending": n}) for name, n in pending.by_age.items()],
        label_width=110,
    )
    due = portfolio.reviews_due(session, sites, REVIEW_WINDOW_DAYS)
    weeks: list[tuple[str, int]] = []
    for week in range(-(-REVIEW_WINDOW_DAYS // 7)):
        start, end = (
            now + timedelta(days=7 * week),
            now + timedelta(days=min(7 * (week + 1), REVIEW_WINDOW_DAYS)),
        )
        n = sum(1 for a in due if a.valid_until is not None and start < a.valid_until <= end)
        weeks.append((f"{start:%d %b} to {end:%d %b}", n))
    due_chart = charts.bar_chart(
        f"Reviews due in the next {REVIEW_WINDOW_DAYS} days, by week",
        [charts.Item(name, {"due": n}) for name, n in weeks],
        label_width=150,
    )
    pending_list = portfolio.oldest_pending(session, sites)
    context: dict[str, Any] = {
        "counts": counts,
        "pending_figures": pending,
        "incidents": open_incidents,
        "computed_at": now,
        "charts": {
            "class": class_chart,
            "tier": tier_chart,
            "stage": stage_chart,
            "site": site_chart,
            "age": age_chart,
            "due": due_chart,
        },
        "pending": pending_list,
        "due": due[:10],
        "names": lookups.system_names(session, [a.system_id for a in [*pending_list, *due[:10]]]),
        "due_total": len(due),
        "window": REVIEW_WINDOW_DAYS,
        "scope": "all sites" if sites is None else ", ".join(sorted(sites)),
    }
    return render(request, "dashboard.html", context)
