"""Reconciliation and healing: drift between Zoho and the ERP, and problems heal keeps finding."""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.config_keys import HEAL_REPEAT_RUNS, RECONCILIATION_DRIFT_THRESHOLD
from alerts.rules.core import Finding, Severity, rule
from sync import healing
from sync.models import SyncRun
from tdscore import config
from tdscore.models import Metric


@rule("reconciliation_drift")
def reconciliation_drift(now: datetime) -> list[Finding]:
    """The latest reconciliation of each entity found Zoho and the ERP apart."""
    threshold = config.get(RECONCILIATION_DRIFT_THRESHOLD)
    runs = SyncRun.objects.filter(
        run_type=SyncRun.RunType.RECONCILIATION,
        status=SyncRun.Status.COMPLETED,
        created_at__gte=now - timedelta(days=8),  # the latest per entity; older ones were superseded
    ).order_by("entity", "-created_at")
    latest: dict[str, SyncRun] = {}
    for run in runs.only("id", "entity", "drift_report"):
        latest.setdefault(run.entity, run)
    findings = []
    for entity, run in sorted(latest.items()):
        report = run.drift_report or {}
        drift = report.get("drift", 0)
        if drift < threshold:
            continue
        ids = [
            i
            for bucket in report.get("buckets", {}).values()
            for kind in bucket.values()
            if isinstance(kind, dict)
            for i in kind.get("ids", [])
        ]
        findings.append(
            Finding(
                subject=entity,
                severity=Severity.WARNING,
                title=f"{entity}: reconciliation #{run.pk} found {drift:,} record{'' if drift == 1 else 's'} apart from Zoho",
                value=drift,
                threshold=threshold,
                context={
                    "entity": entity,
                    "run_id": run.pk,
                    "totals": report.get("totals", {}),
                    "object_ids": ids[:10],
                    "reason": "repaired" if report.get("repair") else "not repaired",
                },
            )
        )
    return findings


@rule("healing_repeats")
def healing_repeats(now: datetime) -> list[Finding]:
    """`heal` keeps finding the same kind of problem: its metric (sync.healing.Problem.metric) > 0 the last N runs."""
    runs = config.get(HEAL_REPEAT_RUNS)
    recent = Metric.objects.filter(
        name__startswith=healing.METRIC_PREFIX, at__gte=now - timedelta(days=1)
    )  # tds_metric_name_at
    findings = []
    for name in sorted(set(recent.values_list("name", flat=True))):
        values = list(Metric.objects.filter(name=name).order_by("-at").values_list("value", flat=True)[:runs])
        if len(values) < runs or min(values) <= 0:
            continue
        problem = name.removeprefix(healing.METRIC_PREFIX)
        findings.append(
            Finding(
                subject=problem,
                severity=Severity.WARNING,
                title=f"heal found {problem.replace('_', ' ')} {runs} runs in a row (latest {values[0]:g})",
                value=values[0],
                threshold=runs,
                context={"reason": f"{problem} keeps coming back: find its cause", "last_counts": values},
            )
        )
    return findings
