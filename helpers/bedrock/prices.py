"""Bedrock prices the cost estimates use, each with where and when it was read.

Why a table with sources: prices change and several here come from third-party pages, not from
AWS's pricing page (which no machine building this project can read live). Every estimate the
workbook prints is only as good as these rows, so each names its source, the date it was read
and whether it is confirmed on an AWS page. Override any of them with the settings
(mask_price_usd, embed_price_usd) when your pricing page says otherwise.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from helpers.bedrock.client import NOVA_CANVAS, NOVA_EMBED, TITAN_EMBED, TITAN_MASK_V2
from helpers.bedrock.lifecycle import foundation_id


@dataclass(frozen=True)
class Price:
    """One price: dollars per `unit` for `model_id`, and where it was read."""

    model_id: str
    item: str            # "image", "input token", "output token"
    usd: float
    source: str
    read_on: str         # ISO date (or month) the source was read
    confirmed: bool      # True only when read on an AWS page


NOVA_2_LITE = "amazon.nova-2-lite-v1:0"

PRICES: tuple[Price, ...] = (
    Price(TITAN_MASK_V2, "image", 0.01, "original design of this workbook ($0.008-0.012, standard "
          "quality); model retired 2026-06-30", "2025-11", False),
    Price(NOVA_CANVAS, "image", 0.04, "commonly quoted standard-quality 1024 px rate; no page with "
          "the figure was read for this table; model retired 2026-09-30", "2026-11", False),
    Price(TITAN_EMBED, "image", 0.00006, "third-party price lists (bedrock.md: 'about $0.00006 per "
          "image')", "2026-11", False),
    Price(NOVA_EMBED, "image", 0.00006, "third-party price lists (bedrock.md: same as Titan MM G1)",
          "2026-11", False),
    Price(NOVA_2_LITE, "input token", 0.33e-6, "vercel.com/ai-gateway/models/nova-2-lite "
          "($0.33 per 1M input tokens, Bedrock provider)", "2026-11", False),
    Price(NOVA_2_LITE, "output token", 2.75e-6, "vercel.com/ai-gateway/models/nova-2-lite "
          "($2.75 per 1M output tokens, Bedrock provider)", "2026-11", False),
)

#: Batch price as a share of on-demand. Third-party pages (cloudroutehq.com, metaltoad.com, 2026)
#: say "about 50% off"; an older snapshot of aws.amazon.com/bedrock/pricing says batch costs the
#: same as on-demand. Unconfirmed: the estimate shows both figures and names this share.
BATCH_PRICE_SHARE = 0.5
BATCH_PRICE_SOURCE = ("third-party pages (cloudroutehq.com, metaltoad.com) read 2026-11 say about "
                      "50% of on-demand; an older aws.amazon.com/bedrock/pricing snapshot said equal. "
                      "Unconfirmed")


def price(model_id: str, item: str = "image") -> Price:
    """The price row of a model (inference profiles map to their foundation model)."""
    fid = foundation_id(model_id)
    for row in PRICES:
        if row.model_id == fid and row.item == item:
            return row
    raise KeyError(f"no {item!r} price is recorded for {model_id}; add it to "
                   f"helpers.bedrock.prices.PRICES with its source and date")


def token_cost(model_id: str, input_tokens: int, output_tokens: int) -> float:
    """Dollars of one Converse call from the token counts Bedrock reported (`usage`)."""
    return (input_tokens * price(model_id, "input token").usd
            + output_tokens * price(model_id, "output token").usd)


def price_table() -> pd.DataFrame:
    """Every price with its source and date, for the notebooks' cost cells."""
    return pd.DataFrame([asdict(p) for p in PRICES])
