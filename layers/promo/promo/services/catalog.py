"""Adding, generating and deleting codes; finding pools and codes by a protocol's names."""

from collections.abc import Sequence
from typing import NamedTuple
from uuid import UUID

from promo.domain.codegen import CodeGenerator
from promo.domain.errors import (
    CodeNotFound,
    DuplicateValues,
)
from promo.domain.models import (
    Code,
    NewCode,
    Window,
)
from promo.services import Services
from promo.services.listing import CodePage, page_of
from promo.services.pools import find_pool, resolve_pools


class CodeToAdd(NamedTuple):
    """A code to add to the pool a protocol names ``pool_alias``."""

    pool_alias: str
    value: str
    validity: Window


def generate_codes(
    svc: Services, tenant_id: str, protocol: str, alias: str, count: int, length: int, actor: str
) -> list[Code]:
    """``count`` new random codes in the pool a protocol names ``alias``, none colliding with
    any value of the tenant."""
    pool = find_pool(svc, tenant_id, protocol, alias)
    generator = CodeGenerator(length)
    tenant = pool.tenant_id
    for _ in range(3):
        values = generator.generate(
            count,
            existing_count=svc.codes.created_count(tenant),
            taken=lambda batch: svc.codes.existing_values(tenant, list(batch)),
        )
        try:
            new = [NewCode(pool.pool_id, value) for value in values]
            return svc.codes.add(tenant, {pool.pool_id: pool}, new, actor)
        except DuplicateValues:
            continue  # another writer took one of them between the check and the write
    raise DuplicateValues([])


def pool_code(
    svc: Services,
    tenant_id: str,
    protocol: str,
    alias: str,
    number: int,
    include_deleted: bool = True,
) -> Code:
    """The code with this integer id in the pool a protocol names; another pool's code (and,
    unless ``include_deleted``, a deleted one) is not found, as an unknown one."""
    pool = find_pool(svc, tenant_id, protocol, alias)
    code = svc.codes.get_by_number(tenant_id, number)
    if code is None or code.pool_id != pool.pool_id:
        raise CodeNotFound
    if code.is_deleted and not include_deleted:
        raise CodeNotFound
    return code


def add_codes(
    svc: Services, tenant_id: str, protocol: str, entries: Sequence[CodeToAdd], actor: str
) -> CodePage:
    """Add codes to pools a protocol names, all or none; the codes added, with their pools."""
    pools = resolve_pools(svc.catalog, tenant_id, protocol, {e.pool_alias for e in entries})
    new = [NewCode(pools[e.pool_alias].pool_id, e.value, e.validity) for e in entries]
    by_id = {pool.pool_id: pool for pool in pools.values()}
    return page_of(svc, svc.codes.add(tenant_id, by_id, new, actor))


def delete_codes(svc: Services, tenant_id: str, code_ids: Sequence[UUID], actor: str) -> None:
    svc.codes.delete(tenant_id, code_ids, actor)
