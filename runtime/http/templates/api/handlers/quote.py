"""POST /quote : a validated JSON body in, a typed answer out (runtime.http.gtype).

    {"items": [{"sku": "tea", "qty": 2}]}  ->  {"total": 500, "currency": "EUR", "lines": [...]}

A body that does not match NewQuote is answered 400 with every mismatch, before the handler runs.
"""

from typing import Annotated, TypedDict

from msgspec import Meta

from runtime.http.request import BadRequest


class Item(TypedDict):
    sku: Annotated[str, Meta(min_length=1)]
    qty: Annotated[int, Meta(ge=1, le=1000)]


class NewQuote(TypedDict):
    items: Annotated[list[Item], Meta(min_length=1)]


class Line(TypedDict):
    sku: str
    qty: int
    cents: int


class Quote(TypedDict):
    total: int
    currency: str
    lines: list[Line]


METHODS = ["POST"]
REQUEST = NewQuote
RESPONSE = Quote


async def handler(req, res, gctx, lctx):
    prices = gctx.config["prices"]
    lines = []
    for item in req.data["items"]:
        if item["sku"] not in prices:
            raise BadRequest(f"no price for {item['sku']!r}", fix=f"use one of: {', '.join(sorted(prices))}")
        lines.append({"sku": item["sku"], "qty": item["qty"], "cents": prices[item["sku"]] * item["qty"]})
    return {"total": sum(line["cents"] for line in lines), "currency": gctx.config["currency"], "lines": lines}
