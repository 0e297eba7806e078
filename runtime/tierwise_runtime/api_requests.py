"""Parsing and checking the JSON bodies of /v1/embeddings, /v1/completions and
/v1/chat/completions."""

from __future__ import annotations

import json
import math
import re
import reprlib
from dataclasses import dataclass
from typing import Any, Literal

from .api_errors import ApiError, invalid
from .chat import ROLES, ChatMessage
from .engine import SamplingParams

#: OpenAI's own limits, kept so clients see the same errors here as there.
MAX_STOP_STRINGS = 4
#: OpenAI documents no length for a stop string; this one bounds the engine thread's
#: matching work per token while leaving room for any real delimiter.
MAX_STOP_CHARS = 256
_SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.manual_seed accepts

Encoding = Literal["float", "base64"]


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    texts: list[str]
    encoding: Encoding
    dimensions: int | None


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    prompts: list[str]
    params: SamplingParams
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[ChatMessage]
    params: SamplingParams
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool


#: A JSON escape of a UTF-16 surrogate: only these can put a lone surrogate in a string
#: (raw UTF-8 cannot encode one, and strict decoding refuses the bytes).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
#: Values quoted in error messages are cut short and never walked deeply.
_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 3, 60, 60


def parse_json(raw: bytes | bytearray) -> dict[str, Any]:
    """The body as a JSON object, or a 400 saying why it is not one."""
    try:
        body = json.loads(raw)
    except ValueError as exc:  # bad UTF-8, bad JSON, an integer of over 4,300 digits
        raise invalid(f"the body is not valid JSON: {exc}", code="invalid_json") from exc
    except RecursionError:
        raise invalid("the body nests too deeply", code="invalid_json") from None
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object", code="invalid_json")
    if _SURROGATE_ESCAPE.search(raw) and not _encodable(body):
        raise invalid(
            "the body holds a lone UTF-16 surrogate (e.g. \\ud800): text must be valid Unicode",
            code="invalid_json",
        )
    return body


def _encodable(value: object) -> bool:
    """Every string (keys too) is valid Unicode, checked without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def show(value: object) -> str:
    """A short, shallow repr of a client's value for an error message."""
    return _SHOW.repr(value)


def parse_embedding_request(body: dict[str, Any]) -> EmbeddingRequest:
    encoding: Encoding
    match body.get("encoding_format") or "float":
        case "float":
            encoding = "float"
        case "base64":
            encoding = "base64"
        case _:
            raise invalid("encoding_format must be 'float' or 'base64'", "encoding_format")
    return EmbeddingRequest(
        model=_model(body),
        texts=_texts(body, "input"),
        encoding=encoding,
        dimensions=_integer(body, "dimensions", None, minimum=1),
    )


def parse_completion_request(body: dict[str, Any]) -> CompletionRequest:
    _refuse_unsupported(body)
    return CompletionRequest(
        model=_model(body),
        prompts=_texts(body, "prompt"),
        params=_sampling(body, "max_tokens", 16),
        stop=_stop(body),
        stream=_boolean(body, "stream"),
        include_usage=_boolean(body.get("stream_options") or {}, "include_usage"),
    )


def parse_chat_request(body: dict[str, Any]) -> ChatRequest:
    _refuse_unsupported(body, chat=True)
    # OpenAI's newer name wins; an unset length runs to the context's end, bounded here.
    tokens = (
        "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    )
    return ChatRequest(
        model=_model(body),
        messages=_messages(body),
        params=_sampling(body, tokens, 256),
        stop=_stop(body),
        stream=_boolean(body, "stream"),
        include_usage=_boolean(body.get("stream_options") or {}, "include_usage"),
    )


def _sampling(body: dict[str, Any], max_tokens: str, default: int) -> SamplingParams:
    seed_low, seed_high = _SEED_RANGE
    # Accepted as OpenAI bounds them, though they do not change the answer here.
    for penalty in ("presence_penalty", "frequency_penalty"):
        _number(body, penalty, 0.0, -2.0, 2.0)
    return SamplingParams(
        max_tokens=_integer(body, max_tokens, default, minimum=1) or default,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0, open_low=True),
        seed=_integer(body, "seed", None, minimum=seed_low, maximum=seed_high),
    )


def _messages(body: dict[str, Any]) -> list[ChatMessage]:
    """A non-empty list of {role, content}; content is text or a list of text parts."""
    value = body.get("messages")
    if value is None:
        raise invalid("messages is required", "messages", "missing_required_parameter")
    if not isinstance(value, list):
        raise invalid("messages must be a list of messages", "messages", "invalid_type")
    if not value:
        raise invalid("messages must not be an empty list", "messages", "empty_input")
    return [_message(item, f"messages[{i}]") for i, item in enumerate(value)]


def _text_part(part: object, where: str) -> str:
    if not isinstance(part, dict) or part.get("type") != "text":
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        raise invalid(f"{where}.content: only text parts are supported, got {show(kind)}",
                      "messages", "unsupported_content")  # fmt: skip
    text = part.get("text")
    if not isinstance(text, str):
        raise invalid(f"{where}.content: a text part needs a text string", "messages",
                      "invalid_type")  # fmt: skip
    return text


def _message(item: object, where: str) -> ChatMessage:
    if not isinstance(item, dict):
        raise invalid(
            f"{where} must be an object with role and content", "messages", "invalid_type"
        )
    role = item.get("role")
    if role not in ROLES:
        roles = ", ".join(ROLES)
        raise invalid(f"{where}.role must be one of {roles}, got {show(role)}", "messages")
    content = item.get("content")
    if isinstance(content, list):
        content = "".join(_text_part(part, where) for part in content)
    if not isinstance(content, str):
        raise invalid(f"{where}.content must be a string or a list of text parts", "messages",
                      "invalid_type")  # fmt: skip
    return ChatMessage(role, content)


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise invalid("model is required", "model", "missing_required_parameter")
    if not isinstance(model, str):
        raise invalid("model must be a string", "model", "invalid_type")
    return model


def _texts(body: dict[str, Any], name: str) -> list[str]:
    """A string or a non-empty list of strings, none of them empty."""
    value = body.get(name)
    if value is None:
        raise invalid(f"{name} is required", name, "missing_required_parameter")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        hint = " (token arrays are not accepted: send text)" if _has_ints(value) else ""
        raise invalid(f"{name} must be a string or a list of strings{hint}", name, "invalid_type")
    if not texts:
        raise invalid(f"{name} must not be an empty list", name, "empty_input")
    for index, text in enumerate(texts):
        if not text:
            where = name if isinstance(value, str) else f"{name}[{index}]"
            raise invalid(f"{where} must not be an empty string", name, "empty_input")
    return texts


def _has_ints(value: object) -> bool:
    items = value if isinstance(value, list) else [value]
    return any(isinstance(item, int | list) for item in items)


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise invalid("stop must be a non-empty string or a list of them", "stop", "invalid_type")
    if len(stops) > MAX_STOP_STRINGS:
        raise invalid(f"stop takes at most {MAX_STOP_STRINGS} strings", "stop")
    longest = max(len(s) for s in stops) if stops else 0
    if longest > MAX_STOP_CHARS:
        raise invalid(f"a stop string has {longest} characters; at most {MAX_STOP_CHARS}", "stop")
    return tuple(stops)


def _integer(
    body: dict[str, Any],
    name: str,
    default: int | None,
    *,
    minimum: int,
    maximum: int | None = None,
) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{name} must be an integer", name, "invalid_type")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise invalid(f"{name} must be {bounds}, got {value}", name)
    return value


def _number(
    body: dict[str, Any],
    name: str,
    default: float,
    low: float,
    high: float,
    *,
    open_low: bool = False,
) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"{name} must be a number", name, "invalid_type")
    if isinstance(value, float) and not math.isfinite(value):  # NaN passes every bound
        raise invalid(f"{name} must be a finite number, got {value}", name)
    if value > high or value < low or (open_low and value == low):
        bracket = "(" if open_low else "["
        raise invalid(f"{name} must be in {bracket}{low}, {high}], got {value}", name)
    return float(value)


def _boolean(body: dict[str, Any], name: str) -> bool:
    if not isinstance(body, dict):
        raise invalid("stream_options must be an object", "stream_options", "invalid_type")
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false", name, "invalid_type")
    return value


def _refuse_unsupported(body: dict[str, Any], *, chat: bool = False) -> None:
    """Options that would change the answer and that this server does not implement."""
    unsupported: dict[str, tuple[object, ...]] = {"n": (None, 1)}
    if chat:
        unsupported |= {"logprobs": (None, False), "tools": (None, []),
                        "response_format": (None, {"type": "text"})}  # fmt: skip
    else:
        unsupported |= {"best_of": (None, 1), "echo": (None, False), "logprobs": (None,),
                        "suffix": (None,)}  # fmt: skip
    for name, accepted in unsupported.items():
        value = body.get(name)
        if not any(value is ok or (type(value) is type(ok) and value == ok) for ok in accepted):
            raise ApiError(
                400,
                f"{name}={show(value)} is not supported",
                param=name,
                code="unsupported_parameter",
            )
