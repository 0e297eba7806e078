"""The OpenAI-compatible routes: /v1/embeddings, /v1/completions and /v1/chat/completions
(JSON or SSE), and /v1/models."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import torch
from aiohttp import web

from .adapters.errors import AdapterError, UnknownAdapter
from .api_errors import ApiError, error_body, invalid, unavailable
from .api_requests import (
    ChatRequest,
    CompletionRequest,
    EmbeddingRequest,
    parse_chat_request,
    parse_completion_request,
    parse_embedding_request,
    parse_json,
)
from .appkeys import CONFIG, LIFECYCLE
from .batching import QueueFull
from .completion_service import CompletionService, CompletionStream, Finished, TextDelta
from .embedding_service import EmbeddingService
from .engine import EngineInfo
from .errors import InputError, ShuttingDown
from .input_checks import InputTooLong
from .lifecycle import Lifecycle
from .request_body import take_body

routes = web.RouteTableDef()
#: The routes whose JSON body the server reads (request_body) before they run.
BODY_ROUTES = frozenset({"/v1/embeddings", "/v1/completions", "/v1/chat/completions"})


@routes.post("/v1/embeddings")
async def embeddings(request: web.Request) -> web.Response:
    life = request.app[LIFECYCLE]
    req = parse_embedding_request(parse_json(take_body(request)))
    info, adapter = _check_model(life, req.model)
    service = _embedding_service(life, info)
    _check_chars(request, info, [len(text) for text in req.texts], "input")
    if req.dimensions is not None and req.dimensions != info.embedding_dim:
        raise invalid(f"dimensions must be {info.embedding_dim} for this model", "dimensions")
    _check_count(request, len(req.texts), "input")
    try:
        result = await service.embed(req.texts, adapter)
    except (QueueFull, InputTooLong) as exc:
        raise _refusal(request, exc, "input", len(req.texts)) from exc
    except AdapterError as exc:
        raise _bad_adapter(exc) from exc
    life.metrics.tokens.labels(kind="prompt").inc(result.prompt_tokens)
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(vector, req)}
        for i, vector in enumerate(result.vectors)
    ]
    usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
    return web.json_response(
        {"object": "list", "data": data, "model": info.model_name, "usage": usage}
    )


@routes.post("/v1/completions")
async def completions(request: web.Request) -> web.StreamResponse:
    life = request.app[LIFECYCLE]
    req = parse_completion_request(parse_json(take_body(request)))
    info, adapter = _check_model(life, req.model)
    service = _completion_service(life, info, "/v1/completions")
    _check_count(request, len(req.prompts), "prompt")
    _check_chars(request, info, [len(prompt) for prompt in req.prompts], "prompt")
    params = dataclasses.replace(req.params, adapter=adapter)
    try:
        stream = await service.submit(req.prompts, params, req.stop)
    except (QueueFull, InputTooLong) as exc:
        raise _refusal(request, exc, "prompt", len(req.prompts)) from exc
    except AdapterError as exc:
        raise _bad_adapter(exc) from exc
    life.metrics.tokens.labels(kind="prompt").inc(stream.prompt_tokens)
    try:
        if req.stream:
            return await _event_stream(request, _completion_chunks(life, info, req, stream))
        return await _whole_completion(life, info, req, stream)
    finally:
        stream.cancel()


@routes.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    life = request.app[LIFECYCLE]
    req = parse_chat_request(parse_json(take_body(request)))
    info, adapter = _check_model(life, req.model)
    service = _completion_service(life, info, "/v1/chat/completions")
    _check_chars(request, info, [sum(len(m.content) for m in req.messages)], "messages")
    params = dataclasses.replace(req.params, adapter=adapter)
    try:
        stream = await service.submit_chat(req.messages, params, req.stop)
    except (QueueFull, InputTooLong) as exc:
        raise _refusal(request, exc, "messages", 1) from exc
    except AdapterError as exc:
        raise _bad_adapter(exc) from exc
    except InputError as exc:
        raise invalid(str(exc), "messages", "chat_unavailable") from exc
    life.metrics.tokens.labels(kind="prompt").inc(stream.prompt_tokens)
    try:
        if req.stream:
            return await _event_stream(request, _chat_chunks(life, info, req, stream))
        return await _whole_chat(life, info, stream)
    finally:
        stream.cancel()


@routes.get("/v1/models")
async def models(request: web.Request) -> web.Response:
    life = request.app[LIFECYCLE]
    info = _loaded(life)
    model = {
        "id": info.model_name,
        "object": "model",
        "created": life.created,
        "owned_by": "tierwise",
        "tierwise": {
            "task": str(info.task),
            "precision": str(info.precision),
            "device": info.device,
            "tier": str(info.tier),
            "max_tokens": info.max_tokens,
            "weight_bytes": info.weight_bytes,
        },
    }
    data = [model, *_adapter_models(life, info)]
    return web.json_response({"object": "list", "data": data})


def _adapter_models(life: Lifecycle, info: EngineInfo) -> list[dict[str, Any]]:
    """One entry per listed adapter: its id, its base (`parent`) and its state."""
    if life.adapters is None:
        return []
    return [
        {
            "id": entry["name"],
            "object": "model",
            "created": life.created,
            "owned_by": "tierwise",
            "parent": info.model_name,
            "tierwise": {"adapter": entry},
        }
        for entry in life.adapters.listing()
    ]


async def _whole_completion(
    life: Lifecycle, info: EngineInfo, req: CompletionRequest, stream: CompletionStream
) -> web.Response:
    texts = [""] * len(req.prompts)
    reasons: list[str | None] = [None] * len(req.prompts)
    completion_tokens = 0
    async for event in stream:
        if isinstance(event, TextDelta):
            texts[event.index] += event.text
        else:
            reasons[event.index] = event.reason
            completion_tokens += event.completion_tokens
            life.metrics.tokens.labels(kind="completion").inc(event.completion_tokens)
    choices = [
        {"text": text, "index": i, "logprobs": None, "finish_reason": reasons[i]}
        for i, text in enumerate(texts)
    ]
    body = _envelope(info, "cmpl", "text_completion") | {
        "choices": choices,
        "usage": _usage(stream.prompt_tokens, completion_tokens),
    }
    return web.json_response(body)


async def _completion_chunks(
    life: Lifecycle, info: EngineInfo, req: CompletionRequest, stream: CompletionStream
) -> AsyncGenerator[dict[str, Any]]:
    """One chunk per text delta or finish, then usage when asked."""
    envelope = _envelope(info, "cmpl", "text_completion")
    completion_tokens = 0
    async for event in stream:
        if isinstance(event, Finished):
            completion_tokens += event.completion_tokens
            life.metrics.tokens.labels(kind="completion").inc(event.completion_tokens)
            text, reason = "", event.reason
        else:
            text, reason = event.text, None
        choice = {"text": text, "index": event.index, "logprobs": None, "finish_reason": reason}
        yield envelope | {"choices": [choice]}
    if req.include_usage:
        yield envelope | {"choices": [], "usage": _usage(stream.prompt_tokens, completion_tokens)}


async def _whole_chat(life: Lifecycle, info: EngineInfo, stream: CompletionStream) -> web.Response:
    text, reason, completion_tokens = "", None, 0
    async for event in stream:
        if isinstance(event, TextDelta):
            text += event.text
        else:
            reason, completion_tokens = event.reason, event.completion_tokens
            life.metrics.tokens.labels(kind="completion").inc(completion_tokens)
    message = {"role": "assistant", "content": text}
    body = _envelope(info, "chatcmpl", "chat.completion") | {
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
        "usage": _usage(stream.prompt_tokens, completion_tokens),
    }
    return web.json_response(body)


async def _chat_chunks(
    life: Lifecycle, info: EngineInfo, req: ChatRequest, stream: CompletionStream
) -> AsyncGenerator[dict[str, Any]]:
    """Chunks as OpenAI sends them: the role first, then content deltas, then the finish
    reason, then usage when asked."""
    envelope = _envelope(info, "chatcmpl", "chat.completion.chunk")

    def chunk(delta: dict[str, str], reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return envelope | {"choices": [choice]}

    completion_tokens = 0
    yield chunk({"role": "assistant", "content": ""})
    async for event in stream:
        if isinstance(event, TextDelta):
            yield chunk({"content": event.text})
            continue
        completion_tokens = event.completion_tokens
        life.metrics.tokens.labels(kind="completion").inc(completion_tokens)
        yield chunk({}, event.reason)
    if req.include_usage:
        yield envelope | {"choices": [], "usage": _usage(stream.prompt_tokens, completion_tokens)}


async def _event_stream(
    request: web.Request, chunks: AsyncGenerator[dict[str, Any]]
) -> web.StreamResponse:
    """Server-sent events: each chunk as a `data:` event, then `data: [DONE]`."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    try:
        async with contextlib.aclosing(chunks):
            async for payload in chunks:
                await _send_event(response, payload)
    except ConnectionResetError:
        return response  # the client left; the caller stops its decoding
    except ShuttingDown as exc:
        await _send_event(response, error_body(503, str(exc), code="shutting_down"))
    except Exception as exc:  # headers are gone: report in-band, as OpenAI does
        await _send_event(
            response, error_body(500, f"generation failed: {exc}", code="internal_error")
        )
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def _envelope(info: EngineInfo, id_prefix: str, kind: str) -> dict[str, Any]:
    return {
        "id": f"{id_prefix}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": info.model_name,
    }


async def _send_event(response: web.StreamResponse, payload: dict[str, Any]) -> None:
    await response.write(b"data: " + json.dumps(payload).encode() + b"\n\n")


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _encode(vector: torch.Tensor, req: EmbeddingRequest) -> list[float] | str:
    """Floats, or OpenAI's base64: the little-endian float32 bytes of the vector."""
    values = vector.detach().to(device="cpu", dtype=torch.float32).contiguous()
    if req.encoding == "base64":
        raw = values.numpy().astype("<f4", copy=False).tobytes()
        return base64.b64encode(raw).decode("ascii")
    return list(values.tolist())


def _loaded(life: Lifecycle) -> EngineInfo:
    if life.info is None:  # the readiness gate keeps requests out before this
        raise ApiError(503, "the model is not loaded yet", code="model_loading")
    return life.info


def _check_model(life: Lifecycle, model: str) -> tuple[EngineInfo, str | None]:
    """The engine's info (named as the request names it) and the adapter `model` names:
    the base's name, an adapter's (`NAME` or `BASE:NAME`), or a 404."""
    info = _loaded(life)
    if model == info.model_name:
        return info, None
    served = repr(info.model_name)
    if life.adapters is not None:
        try:
            adapter = life.adapters.resolve_model(model)
        except UnknownAdapter:
            names = life.adapters.names()
            served += f" and its adapters {', '.join(names)}" if names else " (no adapters)"
        except AdapterError as exc:
            raise _bad_adapter(exc) from exc
        else:
            return dataclasses.replace(info, model_name=model), adapter
    raise ApiError(
        404,
        f"the model {model!r} does not exist here; this server serves {served}",
        param="model",
        code="model_not_found",
    )


def _bad_adapter(exc: AdapterError) -> ApiError:
    """A listed adapter that cannot serve: the base and the other adapters still do."""
    return invalid(f"{exc}; the base model and other adapters still serve", "model",
                   "adapter_unavailable")  # fmt: skip


def _embedding_service(life: Lifecycle, info: EngineInfo) -> EmbeddingService:
    if life.embeddings is None:
        raise _wrong_task(info, "/v1/embeddings")
    return life.embeddings


def _completion_service(life: Lifecycle, info: EngineInfo, route: str) -> CompletionService:
    if life.completions is None:
        raise _wrong_task(info, route)
    return life.completions


def _wrong_task(info: EngineInfo, route: str) -> ApiError:
    return ApiError(
        400,
        f"{info.model_name} is a {info.task} model and does not serve {route}",
        param="model",
        code="unsupported_task",
    )


def _check_count(request: web.Request, count: int, param: str) -> None:
    """A request larger than the whole queue could never be admitted: refuse it for good."""
    limit = request.app[CONFIG].limits.max_queue
    if count > limit:
        raise invalid(
            f"{param} has {count} items; at most {limit} per request", param, "too_many_inputs"
        )


def _check_chars(request: web.Request, info: EngineInfo, lengths: list[int], param: str) -> None:
    """Refuse, before tokenizing, a text too long to fit the context whatever its tokens:
    tokenizing megabytes would hold the engine thread for everyone."""
    limit = info.max_tokens * request.app[CONFIG].chars_per_token
    for index, length in enumerate(lengths):
        if length > limit:
            name = f"{param}[{index}]" if len(lengths) > 1 else param
            raise invalid(
                f"{name} has {length} characters; this model's context of {info.max_tokens} "
                f"tokens takes at most {limit}",
                param,
                "context_length_exceeded",
            )


def _refusal(
    request: web.Request, exc: QueueFull | InputTooLong, param: str, count: int
) -> ApiError:
    if isinstance(exc, QueueFull):
        retry_after = request.app[CONFIG].retry_after_s
        return unavailable(f"overloaded: {exc}; retry later", "queue_full", retry_after)
    name = f"{param}[{exc.index}]" if count > 1 else param
    return invalid(exc.describe(name), param, "context_length_exceeded")
