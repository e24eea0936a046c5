"""The spec examples' world: enterprises, vouchers and tokens as the Mews page names them."""

from dataclasses import dataclass
from uuid import UUID

from promo.domain.credentials import MewsAccessToken
from promo.domain.models import Pool, PoolAliases
from promo.secret_hashing import token_digest
from promo.store.credentials import CredentialStore
from tests.support.builders import tenant
from tests.support.tables import Stores

ACME_ENTERPRISE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
GLOBEX_ENTERPRISE = "4d0201db-36f5-428b-8d11-4f0a65e960cc"
# The spec's add example puts codes into these two vouchers; its getAll example reads this one.
ADD_VOUCHERS = ("8c364829-c7ae-4972-b67f-93ea704d7228", "dc9d3488-7fc4-4fc9-a524-14e6504d8734")
GET_ALL_VOUCHER = "fe568bbd-1ecb-4bb2-bf77-96c3698de20d"
GLOBEX_VOUCHER = "9b2f4c1e-6d3a-4f8b-9c7e-2a1b3c4d5e6f"


@dataclass(frozen=True)
class MewsToken:
    client_token: str
    access_token: str

    def body(self, **fields: object) -> dict[str, object]:
        return {
            "ClientToken": self.client_token,
            "AccessToken": self.access_token,
            "Client": "Sample Client 1.0.0",
            **fields,
        }


# The tokens printed on the spec page: a portfolio token over both enterprises.
SPEC_TOKEN = MewsToken(
    "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D",
    "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",
)
ACME_TOKEN = MewsToken("acme-client-token", "acme-access-token-0123456789")
GLOBEX_TOKEN = MewsToken("globex-client-token", "globex-access-token-0123456789")


def mews_pool(tenant_id: str, pool_id: str, voucher: str, offer_id: int) -> Pool:
    return Pool(
        tenant_id,
        pool_id,
        f"{pool_id} voucher",
        aliases=PoolAliases(
            mews_voucher_id=UUID(voucher),
            maestra_external_id=f"{pool_id}-ext",
            synctv_offer_id=offer_id,
        ),
    )


def seed_mews(stores: Stores) -> CredentialStore:
    credentials = CredentialStore(stores.table, stores.settings)
    stores.catalog.put_tenant(tenant("acme"))
    stores.catalog.put_tenant(tenant("globex"))
    for index, voucher in enumerate((*ADD_VOUCHERS, GET_ALL_VOUCHER)):
        stores.catalog.put_pool(mews_pool("acme", f"acme-{index}", voucher, 100 + index))
    stores.catalog.put_pool(mews_pool("globex", "globex-0", GLOBEX_VOUCHER, 200))
    both = {ACME_ENTERPRISE: "acme", GLOBEX_ENTERPRISE: "globex"}
    for token, enterprises, portfolio, name in (
        (SPEC_TOKEN, both, True, "portfolio"),
        (ACME_TOKEN, {ACME_ENTERPRISE: "acme"}, False, "acme-pms"),
        (GLOBEX_TOKEN, {GLOBEX_ENTERPRISE: "globex"}, False, "globex-pms"),
    ):
        credentials.put_mews_token(
            MewsAccessToken(
                token_digest(token.access_token),
                token_digest(token.client_token),
                enterprises,
                portfolio,
                name,
            )
        )
    return credentials
