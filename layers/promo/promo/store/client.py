"""The DynamoDB client, created once per process and reused across invocations."""

from functools import cache
from typing import TYPE_CHECKING, cast

from botocore.config import Config

from promo import aws
from promo.settings import get_settings

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


@cache
def dynamodb() -> "DynamoDBClient":
    settings = get_settings()
    client = aws.client(
        "dynamodb", settings.aws_region, endpoint_url=settings.dynamodb_endpoint_url, config=_CONFIG
    )
    return cast("DynamoDBClient", client)
