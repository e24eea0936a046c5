"""AWS clients straight from botocore, one session per process.

boto3 adds nothing to a low-level client (its extras are resources and S3 transfers), and
importing it costs every cold start ~70 ms more than botocore alone (s3transfer, multiprocessing).
"""

from functools import cache

from botocore.client import BaseClient
from botocore.config import Config
from botocore.session import Session, get_session


@cache
def session() -> Session:
    """Credentials, region and service models resolved once, whichever clients are created."""
    return get_session()


def client(
    service: str, region: str, endpoint_url: str | None = None, config: Config | None = None
) -> BaseClient:
    return session().create_client(
        service, region_name=region, endpoint_url=endpoint_url, config=config
    )
