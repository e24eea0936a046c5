"""The DynamoDB client as functions configure it (the composition root makes one per process)."""

from typing import TYPE_CHECKING, cast

from botocore.config import Config

from promo import aws
from promo.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# Short timeouts and few retries: a Lambda behind API Gateway has 29 s in all, and a caller's own
# retry (idempotent by design) beats a long hang. Client-side parameter validation is off: the
# store builds every request itself (the tests exercise each shape), DynamoDB validates them
# anyway, and on a claim the check was a tenth of the function's CPU (`make bench`).
_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "total_max_attempts": 4},
    max_pool_connections=64,
    parameter_validation=False,
)


def dynamodb(settings: Settings, session: aws.Session) -> "DynamoDBClient":
    client = aws.client(
        session,
        "dynamodb",
        settings.aws_region,
        endpoint_url=settings.dynamodb_endpoint_url,
        config=_CONFIG,
    )
    return cast("DynamoDBClient", client)
