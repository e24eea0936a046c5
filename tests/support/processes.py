"""Callers in separate processes, as separate Lambda instances are: each process its own
client and caches, several threads each, every thread with its own stores."""

import multiprocessing
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import boto3
from botocore.config import Config

from tests.support.tables import Stores


def process_client(endpoint: str, threads: int) -> Any:
    """A DynamoDB Local client for one process's ``threads`` callers."""
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint,
        config=Config(max_pool_connections=threads * 2, retries={"mode": "standard"}),
    )


def thread_stores(client: Any, table_name: str) -> Stores:
    """One caller's stores: its own caches over the process's client."""
    return Stores(client, table_name)


def in_processes(
    work: Callable[..., Counter[str]], arguments: Sequence[tuple[Any, ...]]
) -> Counter[str]:
    """``work(*args)`` in one spawned process per entry of ``arguments``; the outcomes summed.
    ``work`` must be a module-level function (spawned processes import it)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(arguments), mp_context=context) as processes:
        futures = [processes.submit(work, *args) for args in arguments]
        return sum((future.result() for future in futures), Counter())
