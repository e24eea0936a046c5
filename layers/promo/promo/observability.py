"""Logger and business metrics shared by all functions.

Metrics are emitted in CloudWatch Embedded Metric Format by Powertools: IssuedCodes,
NoCodeAvailable and ConflictingClaims (a claim that lost its conditional write to another);
ValidateCallersBlocked (a validate caller went over its miss limit) and
UncountedValidateMisses (a -45 whose counter write failed)."""

from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from promo.settings import get_settings

logger = Logger()


@cache
def metrics() -> Metrics:
    settings = get_settings()
    return Metrics(namespace=settings.metrics_namespace, service=settings.service_name)


def count(name: str, value: int = 1) -> None:
    metrics().add_metric(name=name, unit=MetricUnit.Count, value=value)
