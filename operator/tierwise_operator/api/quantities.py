"""Kubernetes-style quantities (memory, durations, percentages, prices, bandwidth) as typed values.

Each type parses the forms people write in manifests, prints one canonical form,
and tells pydantic (and through it the CRD generator) how it looks on the wire.
A value that does not parse raises a `ValueError` whose message names the
accepted forms; :func:`tierwise_operator.api.errors.format_validation_error`
prefixes it with the field path.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Self

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
#: The regular expression the Kubernetes API server uses for resource.Quantity.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY_RE = re.compile(
    r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<bin>[KMGTPE]i)|(?P<dec>[numkMGTPE])|[eE](?P<exp>[+-]?[0-9]+))?$"
)


def _fmt_decimal(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class _Scalar:
    """Mixin wiring a parse()/__str__ pair into pydantic's core and JSON schemas."""

    #: How the type is described in errors ("is not a <what> (examples: ...)").
    what: ClassVar[str]
    examples: ClassVar[tuple[str, ...]]
    #: OpenAPI schema of the wire form, as the CRD generator should emit it.
    openapi: ClassVar[dict[str, Any]]

    @classmethod
    def parse(cls, raw: Any) -> Self:
        raise NotImplementedError

    @classmethod
    def invalid(cls, raw: Any, detail: str = "") -> ValueError:
        shown = f'"{raw}"' if isinstance(raw, str) else repr(raw)
        extra = f"; {detail}" if detail else ""
        return ValueError(
            f"{shown} is not a {cls.what} (examples: {', '.join(cls.examples)}){extra}"
        )

    @classmethod
    def _validate(cls, raw: Any) -> Self:
        if isinstance(raw, cls):
            return raw
        if isinstance(raw, bool) or raw is None:
            raise cls.invalid(raw)
        return cls.parse(raw)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                cls.wire, when_used="always"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return dict(cls.openapi)

    def wire(self) -> Any:
        """The value as written back into a manifest (its canonical string)."""
        return str(self)


class Memory(int, _Scalar):
    """A number of bytes, written like a Kubernetes resource quantity (`80Gi`, `512Mi`)."""

    what = "memory quantity"
    examples = ("512Mi", "80Gi", "1.5e9")
    openapi: ClassVar[dict[str, Any]] = {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
        "pattern": QUANTITY_PATTERN,
    }

    @classmethod
    def parse(cls, raw: Any) -> Memory:
        if isinstance(raw, int):
            value = Decimal(raw)
        elif isinstance(raw, float):
            if not math.isfinite(raw):
                raise cls.invalid(raw)
            value = Decimal(repr(raw))
        elif isinstance(raw, str):
            value = cls._parse_text(raw.strip())
        else:
            raise cls.invalid(raw)
        if value < 0:
            raise cls.invalid(raw, "memory cannot be negative")
        if value != value.to_integral_value():
            raise cls.invalid(raw, "memory must be a whole number of bytes")
        return cls(int(value))

    @classmethod
    def _parse_text(cls, text: str) -> Decimal:
        match = _QUANTITY_RE.match(text)
        if not match:
            raise cls.invalid(text)
        number = Decimal(match["num"])
        if match["bin"]:
            return number * _BINARY_SUFFIXES[match["bin"]]
        if match["dec"] is not None:
            return number * _DECIMAL_SUFFIXES[match["dec"]]
        if match["exp"] is not None:
            return number.scaleb(int(match["exp"]))
        return number

    def __str__(self) -> str:
        # The shortest exact form wins; binary suffixes win ties (80Gi, not 85899345920).
        value = int(self)
        factors = [*reversed(_BINARY_SUFFIXES.items())] + [
            (s, int(_DECIMAL_SUFFIXES[s])) for s in ("E", "P", "T", "G", "M", "k")
        ]
        forms = [f"{value // f}{s}" for s, f in factors if value and value % f == 0]
        return min([*forms, str(value)], key=len)

    __repr__ = __str__

    @property
    def gib(self) -> float:
        return int(self) / 2**30


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)"
_DURATION_RE = re.compile(rf"^(?:{_DURATION_PART})+$")


class Duration(float, _Scalar):
    """A span of time in seconds, written like a Go duration (`50ms`, `2s`, `1h30m`)."""

    what = "duration"
    examples = ("50ms", "2s", "15m")
    openapi: ClassVar[dict[str, Any]] = {
        "type": "string",
        "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$",
    }

    @classmethod
    def parse(cls, raw: Any) -> Duration:
        if not isinstance(raw, str) or not _DURATION_RE.match(raw.strip()):
            raise cls.invalid(raw)
        seconds = sum(
            float(num) * _DURATION_UNITS[unit]
            for num, unit in re.findall(_DURATION_PART, raw.strip())
        )
        return cls(seconds)

    @classmethod
    def of(cls, seconds: float) -> Duration:
        return cls(seconds)

    def __str__(self) -> str:
        seconds = float(self)
        if seconds == 0:
            return "0s"
        for unit, factor in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
            whole = seconds / factor
            if seconds >= factor and math.isclose(whole, round(whole), abs_tol=1e-9):
                return f"{round(whole)}{unit}"
        if seconds >= 1:
            return f"{_fmt_decimal(Decimal(repr(round(seconds, 6))))}s"
        for unit, factor in (("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
            scaled = seconds / factor
            if scaled >= 1:
                return f"{_fmt_decimal(Decimal(repr(round(scaled, 6))))}{unit}"
        return f"{round(seconds / 1e-9)}ns"

    __repr__ = __str__

    @property
    def ms(self) -> float:
        return float(self) * 1000.0


_PERCENT_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)%$")
_FRACTION_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)$")


class Percentage(float, _Scalar):
    """A fraction, written as a percentage (`2%`) or a fraction (`0.02`)."""

    what = "percentage"
    examples = ("2%", "0.5%", "0.02")
    openapi: ClassVar[dict[str, Any]] = {
        "type": "string",
        "pattern": r"^(([0-9]+(\.[0-9]+)?|\.[0-9]+)%|([0-9]+(\.[0-9]+)?|\.[0-9]+))$",
    }

    @classmethod
    def parse(cls, raw: Any) -> Percentage:
        if isinstance(raw, int | float):
            if not math.isfinite(raw) or raw < 0:
                raise cls.invalid(raw)
            return cls(float(raw))
        if not isinstance(raw, str):
            raise cls.invalid(raw)
        text = raw.strip()
        if match := _PERCENT_RE.match(text):
            return cls(float(Decimal(match[1]) / 100))
        if _FRACTION_RE.match(text):
            return cls(float(text))
        raise cls.invalid(raw)

    @classmethod
    def of(cls, fraction: float) -> Percentage:
        return cls(fraction)

    def __str__(self) -> str:
        pct = Decimal(repr(round(float(self) * 100, 6)))
        return f"{_fmt_decimal(pct)}%"

    __repr__ = __str__

    @property
    def percent(self) -> float:
        return float(self) * 100.0


_PRICE_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")


class Price(Decimal, _Scalar):
    """An amount of money per unit (any currency), kept exact as a decimal string (`"32.00"`)."""

    what = "price"
    examples = ('"32.00"', '"0.004"')
    openapi: ClassVar[dict[str, Any]] = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}

    @classmethod
    def parse(cls, raw: Any) -> Price:
        if isinstance(raw, Decimal | int):
            text = str(raw)
        elif isinstance(raw, float):
            if not math.isfinite(raw):
                raise cls.invalid(raw)
            text = repr(raw)
        elif isinstance(raw, str):
            text = raw.strip()
        else:
            raise cls.invalid(raw)
        if not _PRICE_RE.match(text):
            try:
                value = Decimal(text)
            except InvalidOperation:
                raise cls.invalid(raw) from None
            if not value.is_finite() or value < 0:
                raise cls.invalid(raw, "prices are non-negative decimals") from None
            text = _fmt_decimal(value)
        return cls(text)

    def __str__(self) -> str:
        return Decimal.__str__(self)

    __repr__ = __str__


_BANDWIDTH_RE = re.compile(r"^(?P<num>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[KMGT]i?B|B)/s$")
_BYTE_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}


class Bandwidth(float, _Scalar):
    """Bytes per second, written with a unit (`3GB/s`, `500MiB/s`)."""

    what = "bandwidth"
    examples = ("3GB/s", "500MiB/s")
    openapi: ClassVar[dict[str, Any]] = {
        "type": "string",
        "pattern": r"^[0-9]+(\.[0-9]+)?\s*([KMGT]i?B|B)/s$",
    }

    @classmethod
    def parse(cls, raw: Any) -> Bandwidth:
        if not isinstance(raw, str) or not (match := _BANDWIDTH_RE.match(raw.strip())):
            raise cls.invalid(raw)
        return cls(float(match["num"]) * _BYTE_UNITS[match["unit"]])

    def __str__(self) -> str:
        value = float(self)
        for unit in ("TB", "GB", "MB", "KB"):
            scaled = value / _BYTE_UNITS[unit]
            if scaled >= 1:
                return f"{_fmt_decimal(Decimal(repr(round(scaled, 3))))}{unit}/s"
        return f"{_fmt_decimal(Decimal(repr(round(value, 3))))}B/s"

    __repr__ = __str__
