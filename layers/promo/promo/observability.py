"""Logger and business metrics shared by all functions.

Metrics are emitted in CloudWatch Embedded Metric Format by Powertools: IssuedCodes,
NoCodeAvailable and ConflictingClaims (a claim that lost its conditional write to another);
ValidateCallersBlocked (a validate caller went over its miss limit),
UncountedValidateMisses (a -45 whose counter write failed) and AsyncOperationsRefused (a queued
Maestra operation the worker could not perform, once per delivery); PoolsLow and PoolsEmpty (the
change stream saw a pool fall to its low watermark, or to no code available), and PoolAvailable,
a pool's available codes with the dimensions ``tenant`` and ``pool`` only (``pool_available``).
The composition root names the
namespace and service (``configure``); code counting before it, such as a store built on its
own in a test, counts under the defaults."""

import threading

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from promo.settings import Settings

# Names the dashboard in template.yaml charts (a template test reads them from here).
ISSUED_CODES = "IssuedCodes"
NO_CODE_AVAILABLE = "NoCodeAvailable"
CONFLICTING_CLAIMS = "ConflictingClaims"
# A pool's available codes, per ``tenant`` and ``pool``: counted off the change stream.
POOL_AVAILABLE = "PoolAvailable"

logger = Logger()
_recorder: list[Metrics] = []
# Lambda runs one invocation per process, but the local stack and the benchmark run handlers
# on threads sharing one Metrics: adding while another thread flushes must not break either.
_metrics_lock = threading.Lock()


def configure(settings: Settings) -> None:
    """Count under the namespace and service ``settings`` name."""
    with _metrics_lock:
        _recorder[:] = [_metrics(settings)]


def _metrics(settings: Settings) -> Metrics:
    return Metrics(namespace=settings.metrics_namespace, service=settings.service_name)


def pool_available(tenant_id: str, pool_id: str, available: int) -> None:
    """Record a pool's available codes as its own EMF line: dimensions ``tenant`` and ``pool``
    and no ``service``, so one SEARCH expression finds every pool's."""
    with _metrics_lock:
        namespace = _recorder[0].namespace if _recorder else Settings().metrics_namespace
    # Its own provider: the shared recorder's dimensions (service) must not apply, and an empty
    # service keeps Powertools from adding its own.
    metric = AmazonCloudWatchEMFProvider(namespace=namespace, service="")
    metric.add_dimension(name="tenant", value=tenant_id)
    metric.add_dimension(name="pool", value=pool_id)
    metric.add_metric(name="PoolAvailable", unit=MetricUnit.Count, value=available)
    metric.flush_metrics()


def count(name: str, value: int = 1) -> None:
    with _metrics_lock:
        if not _recorder:
            _recorder.append(_metrics(Settings()))
        _recorder[0].add_metric(name=name, unit=MetricUnit.Count, value=value)


def flush_metrics() -> None:
    """Emit the metrics counted so far, if any, as one EMF line."""
    with _metrics_lock:
        if _recorder and _recorder[0].metric_set:
            _recorder[0].flush_metrics()
