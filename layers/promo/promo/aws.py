"""AWS clients straight from botocore.

boto3 adds nothing to a low-level client (its extras are resources and S3 transfers), and
importing it costs every cold start more than botocore alone (docs/architecture.md).
"""

from botocore.client import BaseClient
from botocore.config import Config
from botocore.session import Session, get_session

__all__ = ["Session", "client", "get_session"]


def client(
    session: Session,
    service: str,
    region: str,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> BaseClient:
    return session.create_client(
        service, region_name=region, endpoint_url=endpoint_url, config=config
    )
