"""One package per vendor protocol: its authentication, requests, answers, error table and the
endpoint decorator its handlers use (``from promo.protocols import maestra``)."""
