"""What `agent-budget prices show` and `prices check` print: a price's whole structure with
the source of each number, and which models a budget or a ledger used have no real price."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from agent_budget.prices.schema import KINDS, ModelPrice, PriceTier

if TYPE_CHECKING:
    from agent_budget.budget import Budget
    from agent_budget.pricing import ResolvedPrice

MILLION = Decimal(1_000_000)

_LABELS = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache read",
    "cache_creation_input_token_cost": "cache write",
    "output_cost_per_reasoning_token": "reasoning",
    "input_cost_per_audio_token": "audio input",
    "output_cost_per_audio_token": "audio output",
    "search_context_cost_per_query": "web search",
}
_TIER_RE = re.compile(r"_above_(\d+k?)_tokens")
_MODE_RE = re.compile(r"_(batches|priority|flex|ultrafast|balanced)$")


@dataclass(frozen=True)
class PriceRow:
    """One number of a price: what it is, its value and unit, and where it came from."""

    what: str
    usd: str
    unit: str
    source: str


def usd(value: Decimal | float | int) -> str:
    text = f"{Decimal(str(value)).normalize():f}"
    return f"${text}"


def price_rows(price: ResolvedPrice) -> list[PriceRow]:
    """Every number that prices ``price.model``, each with its source."""
    if price.structure is not None:
        return _structure_rows(price.structure, _own_source(price))
    if price.entry is not None:
        return _entry_rows(price.entry.info, "")
    return []


def _own_source(price: ResolvedPrice) -> str:
    kind = price.price_source
    name = price.model
    return {
        "budget": f"model_prices[{name!r}]",
        "free": "budget free_models",
        "registered": "register_model_price()",
        "fallback": "budget price_fallback",
    }.get(kind, kind)


def _structure_rows(p: ModelPrice, source: str) -> list[PriceRow]:
    rows = [
        PriceRow(k.replace("_", " "), usd(getattr(p, k)), "per 1M tokens", f"{source}.{k}")
        for k in KINDS
        if getattr(p, k) is not None
    ]
    for i, tier in enumerate(p.tiers):
        rows += _tier_rows(tier, f"{source}.tiers[{i}]")
    return rows


def _tier_rows(tier: PriceTier, source: str) -> list[PriceRow]:
    return [
        PriceRow(
            f"{k.replace('_', ' ')} above {tier.above:,} tokens",
            usd(getattr(tier, k)),
            "per 1M tokens",
            f"{source}.{k}",
        )
        for k in KINDS
        if getattr(tier, k) is not None
    ]


def _entry_rows(info: Any, source: str) -> list[PriceRow]:
    rows: list[PriceRow] = []
    for key in sorted(info, key=_order):
        value = info[key]
        if key == "tiered_pricing" and isinstance(value, list):
            rows += _tiered_rows(value, f"{source}tiered_pricing")
            continue
        if "cost" not in key or value is None or isinstance(value, bool | str | list):
            continue
        if isinstance(value, dict):  # per-query prices by search context size
            for size, amount in value.items():
                if isinstance(amount, int | float):
                    what = f"{_label(key)} ({size.removeprefix('search_context_size_')})"
                    rows.append(PriceRow(what, usd(amount), "per query", f"{source}{key}"))
            continue
        amount, unit = _scaled(key, value)
        rows.append(PriceRow(_label(key), usd(amount), unit, f"{source}{key}"))
    return rows


def _tiered_rows(tiers: list[Any], source: str) -> list[PriceRow]:
    rows = []
    for i, tier in enumerate(tiers):
        if not isinstance(tier, dict):
            continue
        lo, hi = (tier.get("range") or [None, None])[:2]
        span = f"prompt {_tokens(lo)}-{_tokens(hi)} tokens"
        for key, value in tier.items():
            if "cost" in key and isinstance(value, int | float):
                amount, unit = _scaled(key, value)
                rows.append(PriceRow(f"{_label(key)}, {span}", usd(amount), unit, f"{source}[{i}]"))
    return rows


def _tokens(value: Any) -> str:
    return "?" if value is None else f"{int(value):,}"


def _scaled(key: str, value: float) -> tuple[Decimal, str]:
    if "token" in key:
        return Decimal(str(value)) * MILLION, "per 1M tokens"
    unit = key.split("_per_", 1)[1] if "_per_" in key else "each"
    return Decimal(str(value)), f"per {unit.replace('_', ' ')}"


def _label(key: str) -> str:
    base, notes = key, []
    mode = _MODE_RE.search(base)
    if mode:
        base = base[: mode.start()]
        notes.append({"batches": "batch"}.get(mode.group(1), mode.group(1)))
    tier = _TIER_RE.search(base)
    if tier:
        base = base[: tier.start()] + base[tier.end() :]
        notes.insert(0, f"above {tier.group(1)} tokens")
    if base.endswith("_above_1hr"):
        base = base.removesuffix("_above_1hr")
        notes.insert(0, "1h TTL")
    label = _LABELS.get(base, base.replace("_", " "))
    return label + (f" ({', '.join(notes)})" if notes else "")


def _order(key: str) -> tuple[int, int, str]:
    """Standard prices first, then batch / priority / flex; within each, input before
    output before cache and the rest."""
    rank = next((i for i, k in enumerate(_LABELS) if key.startswith(k)), len(_LABELS))
    return (1 if _MODE_RE.search(key) else 0), rank, key


# --- prices check ------------------------------------------------------------------------

Status = Literal["priced", "free", "fallback", "zero", "unknown"]


@dataclass(frozen=True)
class ModelCheck:
    """A model a budget or a ledger used, and whether it has a real price."""

    model: str
    status: Status
    source: str
    detail: str
    where: str

    @property
    def problem(self) -> bool:
        return self.status in ("zero", "unknown")


def models_in_budget(budget: Budget) -> dict[str, str]:
    """Model names a budget refers to, each with the field that names it."""
    found: dict[str, str] = {}
    for name in budget.model_prices:
        found.setdefault(name, "model_prices")
    for name in budget.free_models:
        found.setdefault(name, "free_models")
    for alias, target in budget.price_aliases.items():
        found.setdefault(alias, "price_aliases")
        found.setdefault(target, f"price_aliases[{alias!r}]")
    if budget.downgrade is not None:
        found.setdefault(budget.downgrade.model, "downgrade.model")
    return found


def models_in_ledger(location: str) -> dict[str, str]:
    """Model names charged in a ledger, each with how many calls it made."""
    from agent_budget.ledger.report import open_for_reading

    with open_for_reading(location) as ledger:
        rows = ledger.spend(by="name", kind="model")
    return {str(r["name"]): f"ledger, {r['calls']} calls" for r in rows if r.get("name")}


def check_models(budget: Budget, models: dict[str, str]) -> list[ModelCheck]:
    """Resolve each model as a run of ``budget`` would (without failing on the first one
    that has no price)."""
    from agent_budget.models.naming import model_price

    lenient = budget.model_copy(update={"strict_prices": False})
    out = []
    for name, where in models.items():
        price = model_price(name, lenient)
        status: Status = "priced"
        detail = price.note
        if price.unpriced:
            status = "zero" if price.entry is not None else "unknown"
            detail = detail or "in no price map and not priced in the budget"
        elif price.price_source == "fallback":
            status = "fallback"
            detail = "priced by the budget's price_fallback"
        elif price.worst_case(1_000_000, 1_000_000) == 0:
            status = "free"
            detail = detail or "priced at $0 on purpose"
        source = "" if price.unpriced else price.price_source
        out.append(
            ModelCheck(name, status, source, detail or f"{len(price_rows(price))} prices", where)
        )
    return out


def problems(checks: Iterable[ModelCheck]) -> list[ModelCheck]:
    return [c for c in checks if c.problem]
