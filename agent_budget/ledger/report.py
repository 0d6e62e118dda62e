"""What ``agent-budget report`` and ``agent-budget ledger export`` show: spend tables (rich),
JSON, CSV, and a PNG of spend over time stacked by a key (matplotlib, imported only here)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from rich.table import Table

from agent_budget.errors import LedgerUnavailable
from agent_budget.ledger.base import Ledger
from agent_budget.ledger.timeutil import from_us, iso, now_us, parse_moment

BY_CHOICES = ("user", "tenant", "model", "tool", "run", "thread", "node", "kind", "day", "hour")
METRICS = ("usd", "calls", "errors", "refused", "input_tokens", "output_tokens", "held_usd")


def open_for_reading(location: str) -> Ledger:
    """Open an existing ledger (a report must not create an empty one by mistake)."""
    if not location.startswith(("postgresql://", "postgres://")):
        path = Path(location.removeprefix("sqlite://")).expanduser()
        if not path.exists():
            raise LedgerUnavailable(
                f"no ledger at {path}: runs record there once Budget(ledger=) or "
                "AGENT_BUDGET_LEDGER points at it"
            )
    return Ledger.open(location)


def usd_text(value: Decimal | None) -> str:
    """Exact USD, fixed-point: at least two decimals, at most nine, no exponent."""
    if value is None:
        return ""
    text = f"{value:f}"
    if "." not in text:
        return text + ".00"
    whole, frac = text.split(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac.ljust(2, '0')}"


def plain(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with Decimals as exact strings, ready for JSON or CSV."""
    return [
        {k: usd_text(v) if isinstance(v, Decimal) else v for k, v in row.items()} for row in rows
    ]


def total(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {m: sum((r[m] for r in rows), Decimal(0) if "usd" in m else 0) for m in METRICS}


def spend_table(rows: Sequence[dict[str, Any]], by: str, title: str) -> Table:
    """Rows of `Ledger.spend` as a rich table with a total; token and held columns only
    when they have something to show."""
    grand = total(rows)
    columns: list[tuple[str, Any]] = [
        ("USD", lambda r: usd_text(r["usd"])),
        ("share", lambda r: f"{r['usd'] / grand['usd']:.1%}" if grand["usd"] else "-"),
        ("calls", lambda r: str(r["calls"])),
        ("errors", lambda r: str(r["errors"])),
        ("refused", lambda r: str(r["refused"])),
    ]
    if grand["input_tokens"] or grand["output_tokens"]:
        columns.append(("in tok", lambda r: f"{r['input_tokens']:,}"))
        columns.append(("out tok", lambda r: f"{r['output_tokens']:,}"))
    if grand["held_usd"]:
        columns.append(("held", lambda r: usd_text(r["held_usd"]) if r["held_usd"] else ""))
    table = Table(title=title, title_justify="left")
    table.add_column(by, style="bold", overflow="fold", min_width=8)
    for name, _ in columns:
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        label = "(none)" if row.get(by) is None else str(row[by])
        table.add_row(label, *(cell(row) for _, cell in columns))
    table.add_section()
    table.add_row("total", *(cell(grand) for _, cell in columns), style="bold")
    return table


def to_json(rows: Sequence[dict[str, Any]], **header: Any) -> str:
    return json.dumps({**header, "rows": plain(rows), "total": plain([total(rows)])[0]}, indent=2)


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    rows = plain(rows)
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def export(ledger: Ledger, fmt: str, *, since: Any = None, until: Any = None) -> str:
    """Every row of the ledger in the window, as CSV or JSON (one object per row)."""
    buf = io.StringIO()
    write_export(ledger, fmt, buf, since=since, until=until)
    return buf.getvalue()


def write_export(
    ledger: Ledger, fmt: str, out: IO[str], *, since: Any = None, until: Any = None
) -> int:
    """Stream every row in the window to ``out`` as CSV or a JSON array, a page at a time:
    memory stays flat however many rows there are. Returns how many rows were written."""
    if fmt not in ("csv", "json"):
        raise ValueError(f"format {fmt!r}: use csv or json")
    n = 0
    writer: csv.DictWriter[str] | None = None
    for row in plain_rows(ledger.rows(since=since, until=until)):
        if fmt == "csv":
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n")
                writer.writeheader()
            writer.writerow(row)
        else:
            out.write(("[\n  " if n == 0 else ",\n  ") + json.dumps(row))
        n += 1
    if fmt == "json":
        out.write("\n]\n" if n else "[]\n")
    return n


def plain_rows(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield {k: usd_text(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def write_plot(
    ledger: Ledger, by: str, path: str | os.PathLike[str], *, since: Any = None, until: Any = None
) -> Path:
    """A stacked bar chart of committed spend per hour (windows up to two days) or per day,
    one colour per value of ``by``, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    now = now_us()
    start = parse_moment(since, now, what="since")
    end = parse_moment(until, now, what="until") if until is not None else now
    if start == 0:  # all time: bucket by what the ledger holds
        first = next(iter(ledger.rows(since=None, until=until)), None)
        start = parse_moment(first["ts"], now, what="since") if first else now
    bucket = "hour" if end - start <= 2 * 86400 * 10**6 else "day"
    keys = [bucket] if by == bucket else [bucket, by]
    rows = ledger.spend(by=keys, since=from_us(start), until=until)
    series: dict[str, dict[str, float]] = defaultdict(dict)
    buckets = sorted({r[bucket] for r in rows})
    for r in rows:
        label = str(r.get(by)) if by != bucket else "spend"
        series[label][r[bucket]] = float(r["usd"])
    order = sorted(series, key=lambda k: -sum(series[k].values()))
    if len(order) > 9:  # a legend past ten entries is unreadable: fold the tail
        other: dict[str, float] = defaultdict(float)
        for k in order[9:]:
            for b, v in series.pop(k).items():
                other[b] += v
        order = [*order[:9], "other"]
        series["other"] = dict(other)
    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    bottom = [0.0] * len(buckets)
    labels = [b[5:16].replace("T", " ") if bucket == "hour" else b for b in buckets]
    for k in order:
        values = [series[k].get(b, 0.0) for b in buckets]
        ax.bar(labels, values, bottom=bottom, label=k)
        bottom = [x + y for x, y in zip(bottom, values, strict=True)]
    ax.set_ylabel("USD (committed)")
    span = f"{(iso(start) or '')[:16]} to {(iso(end) or '')[:16]}"
    ax.set_title(f"Spend per {bucket} by {by}, {span} UTC")
    if order and by != bucket:
        ax.legend(title=by, fontsize="small")
    ax.tick_params(axis="x", labelrotation=45, labelsize="small")
    ax.grid(axis="y", alpha=0.3)
    if not buckets:
        ax.text(
            0.5, 0.5, "no spend in this window", ha="center", va="center", transform=ax.transAxes
        )
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def describe_since(since: str | None) -> str:
    if since is None:
        return "all time"
    moment = parse_moment(since, now_us(), what="since")
    return f"since {datetime.fromtimestamp(moment / 1e6).astimezone().strftime('%Y-%m-%d %H:%M')}"
