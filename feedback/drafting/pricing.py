"""What a call costs, from the per-model price table in settings (US dollars per million tokens)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

_MILLION = Decimal(1_000_000)


def price_of(model: str) -> tuple[Decimal, Decimal]:
    prices = settings.LLM_PRICES.get(model)
    if not prices:
        return Decimal(0), Decimal(0)
    return Decimal(str(prices[0])), Decimal(str(prices[1]))


def cost_of(model: str, tokens_in: int, tokens_out: int) -> Decimal:
    price_in, price_out = price_of(model)
    return (price_in * tokens_in + price_out * tokens_out) / _MILLION
