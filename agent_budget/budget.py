"""`Budget`: the limits an agent may spend, its prices, and what happens when it runs out.

Plain data (pydantic v2). Loading from dicts, YAML, TOML, JSON, `AGENT_BUDGET_*` environment
variables and a LangGraph `config["configurable"]["budget"]` lives here too, so every entry
point reports bad values the same way: one `InvalidBudget` naming the field. (Over 400
lines for that reason: the settings, their validation and their loaders are one schema.)
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from agent_budget.errors import InvalidBudget
from agent_budget.policies import Downgrade, Guards, check_warn_at, resolve_alias
from agent_budget.prices.schema import ModelPrice
from agent_budget.units import (
    Count,
    LedgerLocation,
    Money,
    Seconds,
    Window,
    _Strict,
)

OnExhausted = Literal["finalize", "raise", "interrupt"]
"""What a run does when a limit is spent:

- ``finalize``: stop calling tools and make one last model call, without tools, for the answer.
- ``raise``: raise `BudgetExceeded` out of the graph.
- ``interrupt``: call LangGraph ``interrupt()`` so a person can top up and resume.
"""

Scope = Literal["thread", "run", "user", "tenant", "global"]
"""Over what spend accumulates:

- ``thread``: the whole conversation thread; kept in graph state, so a checkpointer persists it.
- ``run``: one invocation; resuming after an interrupt continues the same run.
- ``user``: every run of the run config's ``user_id``, in every worker process, over
  ``window``; kept in the spend ledger (which must be configured).
- ``tenant``: the same over the run config's ``tenant_id``.
- ``global``: everything recorded in the ledger, over ``window``.

With ``user``/``tenant``/``global`` the limits ``usd``, ``tokens.total``, ``model_calls`` and
``total_tool_calls`` are shared limits checked atomically against the ledger; they also bound
each thread on its own (a thread's spend is part of its user's).
"""

SharedScope = Literal["user", "tenant", "global"]
SHARED_SCOPES: tuple[str, ...] = ("user", "tenant", "global")

ENV_PREFIX = "AGENT_BUDGET_"
# Variables with this prefix that configure something other than the limits themselves.
_ENV_NOT_LIMITS = {"FILE", "LEDGER", "LEDGER_TTL", "CACHE_DIR", "ALLOW_PRIVATE_URLS"}


class TokenLimits(_Strict):
    """Token limits over the budget's scope. ``None`` means no limit."""

    input: Count | None = None
    output: Count | None = None
    total: Count | None = None


class SharedLimit(_Strict):
    """A limit shared by every run of a user, of a tenant, or of everyone, kept in the spend
    ledger and checked atomically across worker processes and hosts.

    >>> SharedLimit(scope="user", window="1d", usd=2.0)
    """

    scope: SharedScope
    window: Window | None = None
    """Rolling (``"24h"``, ``"7d"``) or calendar (``"calendar-day"``, UTC); None: all time."""
    usd: Money | None = None
    total_tokens: Count | None = None
    model_calls: Count | None = None
    total_tool_calls: Count | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> SharedLimit:
        limits = (self.usd, self.total_tokens, self.model_calls, self.total_tool_calls)
        if all(v is None for v in limits):
            raise ValueError(
                f"a shared {self.scope} limit needs at least one of usd, total_tokens, "
                "model_calls, total_tool_calls"
            )
        return self


class Budget(_Strict):
    """What an agent may spend. Every limit is optional; ``None`` means unlimited.

    >>> Budget(usd=0.50, tool_calls={"web_search": 10}, prices={"web_search": 0.001})
    """

    usd: Money | None = None
    tokens: TokenLimits = Field(default_factory=TokenLimits)
    tool_calls: dict[str, Count] = Field(default_factory=dict)
    total_tool_calls: Count | None = None
    model_calls: Count | None = None
    seconds: Seconds | None = None

    prices: dict[str, Money] = Field(default_factory=dict)
    """USD per call of each tool."""
    default_tool_price: Money | None = Decimal(0)
    """Price of a tool not listed in `prices`. ``None`` makes an unlisted tool an `UnknownPrice`."""
    model_prices: dict[str, ModelPrice] = Field(default_factory=dict)
    """Prices of custom or local models, which win over LiteLLM's price map: input, output,
    cached_input, cache_write, reasoning, ... and ``tiers`` for long prompts (`ModelPrice`)."""
    free_models: list[str] = Field(default_factory=list)
    """Models that really cost nothing. LiteLLM lists some hosted models at $0 as a
    placeholder; such a model is an `UnknownPrice` unless listed here or priced."""
    price_map: str | None = None
    """A LiteLLM-format price map file (JSON) to price models by instead of the installed
    LiteLLM's own map: pins prices, so a run months later charges what it did today."""
    price_fallback: ModelPrice | None = None
    """Price of a model nobody knows. Without one, such a model raises `UnknownPrice`."""

    on_exhausted: OnExhausted = "finalize"
    reserve_usd: Money = Decimal(0)
    """Held back from normal calls so the final answer can still be paid for."""
    default_max_output_tokens: Count = 1024
    """A model call's worst-case output when the call declares no ``max_tokens``."""
    scope: Scope = "thread"
    window: Window | None = None
    """For scope ``user``/``tenant``/``global``: the ledger window the limits apply over."""
    shared: list[SharedLimit] = Field(default_factory=list)
    """More limits shared across runs and workers, e.g. ``[{"scope": "user", "window": "1d",
    "usd": 2}, {"scope": "tenant", "window": "calendar-month", "usd": 500}]``; a call must
    fit all of them."""
    ledger: LedgerLocation | None = None
    """Where every charge is recorded: a SQLite file or a ``postgresql://`` URL (default: the
    ``AGENT_BUDGET_LEDGER`` environment variable; no ledger when neither is set)."""

    name: str | None = None
    """Shown in spend trees and recorded with charges; set by `child`."""
    warn_at: list[float] = Field(default_factory=list)
    """Fractions of the tightest limit used at which to warn, once each: ``[0.5, 0.8]``."""
    downgrade: Downgrade | None = None
    """Move model calls to a cheaper model from a regime on: ``{"model": ..., "at": "LOW"}``."""
    guards: Guards = Field(default_factory=Guards)
    strict_prices: bool = True
    """Refuse a model with no known price (`UnknownPrice`). When False such a call is allowed,
    counted as ``unpriced`` (tokens kept, $0 charged) and shown as such, never as free."""
    price_aliases: dict[str, str] = Field(default_factory=dict)
    """Price one model as another: ``{"my-finetune": "gpt-4o-mini"}``."""

    tool_labels: dict[str, str] = Field(default_factory=dict)
    """Names shown in the budget message, e.g. ``{"web_search": "Query", "fetch_page": "URL"}``."""
    message_template: str | None = None
    """Replaces the default message; fields: ``{items}``, ``{regime}``, ``{usd_used}``,
    ``{usd_remaining}``. ``""`` hides the budget from the model (limits still hold)."""

    @field_validator("warn_at")
    @classmethod
    def _warn_at(cls, value: list[float]) -> list[float]:
        return check_warn_at(value)

    @field_validator("price_map")
    @classmethod
    def _price_map(cls, value: str | None) -> str | None:
        if value is not None:
            from agent_budget.prices.litellm_map import load_price_map

            load_price_map(value)  # a missing or malformed file fails here, naming the field
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> Budget:
        known = set(self.prices) | set(self.tool_labels)
        for name, close in misspelled(self.tool_calls, known, cutoff=0.75):
            if close:
                raise ValueError(
                    f"tool_calls.{name}: no tool of that name is priced or labelled; "
                    f"did you mean {close!r}?"
                )
        if self.window is not None and self.scope not in SHARED_SCOPES:
            raise ValueError(
                f"window applies to scope 'user', 'tenant' or 'global' (spend kept in the "
                f"ledger), not to scope {self.scope!r}; set scope= or use shared=[...]"
            )
        shared = (self.usd, self.tokens.total, self.model_calls, self.total_tool_calls)
        if self.scope in SHARED_SCOPES and all(v is None for v in shared):
            raise ValueError(
                f"scope {self.scope!r} shares usd, tokens.total, model_calls or "
                "total_tool_calls across runs, and none of them is set"
            )
        for alias in self.price_aliases:
            resolve_alias(alias, self.price_aliases)
        if self.usd is not None and self.reserve_usd > self.usd:
            raise ValueError(
                f"reserve_usd ({self.reserve_usd}) is larger than usd ({self.usd}); "
                "the reserve is held back from the USD limit"
            )
        if self.message_template is not None:
            try:
                self.message_template.format(items="", regime="", usd_used="", usd_remaining="")
            except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
                raise ValueError(
                    f"message_template: unknown field {exc}; use {{items}}, {{regime}}, "
                    "{usd_used}, {usd_remaining}"
                ) from exc
        return self

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "budget") -> Budget:
        """Validate a mapping; a ``budget:`` wrapper key is accepted too."""
        if not isinstance(data, Mapping):
            raise InvalidBudget(
                f"{source}: expected a mapping of limits, got {type(data).__name__}"
            )
        if set(data) == {"budget"} and isinstance(data["budget"], Mapping):
            data = data["budget"]
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise InvalidBudget(_explain(exc, source)) from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Budget:
        """Load a ``.yaml``/``.yml``, ``.toml`` or ``.json`` budget file."""
        p = Path(path)
        if not p.is_file():
            raise InvalidBudget(f"{p}: no such budget file")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidBudget(f"{p}: cannot read budget file: {exc}") from None
        suffix = p.suffix.lower()
        try:
            if suffix in {".yaml", ".yml"}:
                import yaml

                data = yaml.safe_load(text)
            elif suffix == ".toml":
                data = tomllib.loads(text)
            elif suffix == ".json":
                data = json.loads(text)
            else:
                raise InvalidBudget(
                    f"{p}: unknown budget file type {suffix!r}; use .yaml, .toml or .json"
                )
        except InvalidBudget:
            raise
        except Exception as exc:  # each parser has its own error type; all mean "not parseable"
            raise InvalidBudget(f"{p}: cannot parse {suffix[1:].upper()}: {exc}") from None
        return cls.from_dict(_relative_to(data or {}, p.parent), source=str(p))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = ENV_PREFIX
    ) -> Budget:
        """Build from ``AGENT_BUDGET_*`` variables (``__`` separates nested keys).

        ``AGENT_BUDGET_FILE`` names a file loaded first; the other variables override it:
        ``AGENT_BUDGET_USD=0.5``, ``AGENT_BUDGET_TOKENS__OUTPUT=20k``,
        ``AGENT_BUDGET_TOOL_CALLS__WEB_SEARCH=10``, ``AGENT_BUDGET_ON_EXHAUSTED=raise``.
        """
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        if f"{prefix}FILE" in env:
            data = cls.from_file(env[f"{prefix}FILE"]).model_dump(exclude_defaults=True)
        fields = set(cls.model_fields)
        for key, value in env.items():
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            if rest in _ENV_NOT_LIMITS:
                continue
            path = [part.lower() for part in rest.split("__")]
            if path[0] not in fields:
                close = difflib.get_close_matches(path[0], fields, n=1)
                hint = f"; did you mean {prefix}{close[0].upper()}?" if close else ""
                raise InvalidBudget(f"{key}: not a budget setting{hint}")
            node = data
            for part in path[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise InvalidBudget(f"{key}: {part} is not a table of settings")
            node[path[-1]] = _env_value(value)
        return cls.from_dict(data, source="environment")

    @classmethod
    def load(cls, source: Budget | Mapping[str, Any] | str | os.PathLike[str]) -> Budget:
        """A `Budget` from whatever a user hands over: a Budget, a dict, or a file path."""
        if isinstance(source, Budget):
            return source
        if isinstance(source, Mapping):
            return cls.from_dict(source)
        if isinstance(source, str | os.PathLike):
            return cls.from_file(source)
        raise InvalidBudget(
            f"budget: expected a Budget, a dict or a file path, got {type(source).__name__}"
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Budget | None:
        """The budget in a LangGraph ``config["configurable"]["budget"]``, if there is one."""
        configurable = (config or {}).get("configurable") or {}
        raw = configurable.get("budget")
        return None if raw is None else cls.load(raw)

    def child(self, name: str, **limits: Any) -> Budget:
        """A budget for a sub-agent or a node: its own limits, and every call it makes is
        spent from this budget too (the run wires that up: `BudgetTracker.child`). Prices,
        labels and behaviour are inherited; a child limit larger than this budget's same
        limit is an error, since the child could never use it."""
        inherited = self.model_dump(
            include={
                "prices",
                "default_tool_price",
                "model_prices",
                "free_models",
                "price_map",
                "price_fallback",
                "on_exhausted",
                "default_max_output_tokens",
                "tool_labels",
                "message_template",
                "strict_prices",
                "price_aliases",
                "scope",
            }
        )
        if inherited.get("scope") not in ("thread", "run"):
            inherited["scope"] = "thread"
        from agent_budget.nesting import check_child

        child = Budget.from_dict({**inherited, **limits, "name": name}, source=f"child {name!r}")
        check_child(self, child, name)
        return child

    def topped_up(self, **extra: Any) -> Budget:
        """A copy with limits raised by ``extra`` (same keys as the constructor's limits).

        ``budget.topped_up(usd=0.25, tool_calls={"web_search": 5})`` adds $0.25 and 5 searches.
        A limit that was unlimited stays unlimited.
        """
        add = Budget.from_dict(extra, source="top-up")
        mine, more = limit_values(self), limit_values(add)
        raised = {
            name: value + more[name]
            for name, value in mine.items()
            if value is not None and more.get(name) is not None
        }
        return with_limits(self, raised)


def misspelled(
    names: Iterable[str], known: set[str], *, cutoff: float
) -> Iterator[tuple[str, str | None]]:
    """Each name not in ``known``, with the known name it is closest to (or None)."""
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=cutoff)
            yield name, close[0] if close else None


_SCALAR_LIMITS = ("usd", "total_tool_calls", "model_calls", "seconds")
_TOKEN_LIMITS = ("input", "output", "total")


def limit_values(budget: Budget) -> dict[str, Any]:
    """Every limit of a budget by its dotted name (``usd``, ``tokens.input``,
    ``tool_calls.search``), None when unlimited: the one walk over a budget's limit fields
    (nested-budget checks and top-ups use it; the run's checks use `limits.LimitTable`)."""
    out: dict[str, Any] = {name: getattr(budget, name) for name in _SCALAR_LIMITS}
    out.update({f"tokens.{n}": getattr(budget.tokens, n) for n in _TOKEN_LIMITS})
    out.update({f"tool_calls.{t}": n for t, n in budget.tool_calls.items()})
    return out


def with_limits(budget: Budget, values: Mapping[str, Any]) -> Budget:
    """A copy of ``budget`` with the limits named in ``values`` (dotted names) set."""
    data = budget.model_dump()
    for name, value in values.items():
        head, _, tail = name.partition(".")
        if tail:
            data[head][tail] = value
        else:
            data[head] = value
    return Budget.model_validate(data)


def limit_pairs(parent: Budget, child: Budget) -> list[tuple[str, Any, Any]]:
    """(limit, the parent's value, the child's value) for each limit the parent has."""
    theirs = limit_values(child)
    return [(name, value, theirs.get(name)) for name, value in limit_values(parent).items()]


def _relative_to(data: Any, folder: Path) -> Any:
    """A budget file's relative ``price_map`` path is relative to the file, not the cwd."""
    if not isinstance(data, dict):
        return data
    if set(data) == {"budget"} and isinstance(data["budget"], dict):
        return {"budget": _relative_to(data["budget"], folder)}
    pinned = data.get("price_map")
    if isinstance(pinned, str) and pinned and not Path(pinned).expanduser().is_absolute():
        return {**data, "price_map": str(folder / pinned)}
    return data


def _env_value(value: str) -> Any:
    """Environment values are strings; JSON-looking ones (tables, lists) are decoded."""
    stripped = value.strip()
    if stripped[:1] in "{[":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return value
    return value


def _explain(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parent = _model_at(err["loc"][:-1])
            options = list(parent.model_fields) if parent else []
            close = difflib.get_close_matches(str(err["loc"][-1]), options, n=1)
            msg = "unknown setting" + (f"; did you mean {close[0]!r}?" if close else "")
            lines.append(f"{source}.{loc}: {msg}")
            continue
        got = err.get("input")
        shown = (
            ""
            if isinstance(got, dict) or got is None or "got" in msg or repr(got) in msg
            else f" (got {got!r})"
        )
        lines.append(f"{source}.{loc}: {msg}{shown}")
    return "invalid budget:\n  " + "\n  ".join(lines)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Budget
    skip = False
    for part in loc:
        if isinstance(part, int) or skip:  # an item of a list or a dict of models
            skip = False
            continue
        field = model.model_fields.get(str(part))
        ann = field.annotation if field else None
        if get_origin(ann) is list:
            ann = get_args(ann)[0]
        elif get_origin(ann) is dict:  # model_prices: the next part is the model's name
            ann, skip = get_args(ann)[1], True
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model
