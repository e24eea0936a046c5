"""Logger and business metrics shared by all functions.

Metrics are emitted in CloudWatch Embedded Metric Format by Powertools: IssuedCodes,
NoCodeAvailable and ConflictingClaims (a claim that lost its conditional write to another);
ValidateCallersBlocked (a validate caller went over its miss limit) and
UncountedValidateMisses (a -45 whose counter write failed)."""

import threading
from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from promo.settings import get_settings

logger = Logger()
# Lambda runs one invocation per process, but the local stack and the benchmark run handlers
# on threads sharing one Metrics: adding while another thread flushes must not break either.
_metrics_lock = threading.Lock()


@cache
def metrics() -> Metrics:
    settings = get_settings()
    return Metrics(namespace=settings.metrics_namespace, service=settings.service_name)


def count(name: str, value: int = 1) -> None:
    with _metrics_lock:
        metrics().add_metric(name=name, unit=MetricUnit.Count, value=value)


def flush_metrics() -> None:
    """Emit the metrics counted so far, if any, as one EMF line."""
    with _metrics_lock:
        recorder = metrics()
        if recorder.metric_set:
            recorder.flush_metrics()
