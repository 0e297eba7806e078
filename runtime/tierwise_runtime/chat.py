"""Chat messages -> the prompt text a chat model was trained on, by the model's own template.

Chat models ship a Jinja template (`tokenizer_config.json`'s `chat_template`, a
`chat_template.jinja` file, or GGUF's `tokenizer.chat_template`); it is rendered as
transformers' `apply_chat_template` renders it: a sandboxed environment, blocks
trimmed, `raise_exception` for the template's own checks, the generation prompt
added.

Rendering is bounded: a template runs for at most `RENDER_LIMIT_S` and writes at
most `MAX_PROMPT_CHARS` characters (checked at every output piece, call, attribute
and item lookup), and `*` and `**` may not build huge strings, lists or numbers; a
template over its budget refuses the messages (InputError) instead of holding the
engine thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import CheckpointError, InputError

ROLES = ("system", "developer", "user", "assistant")
#: Longest a template may render, in seconds of the engine thread.
RENDER_LIMIT_S = 1.0
#: Most characters a rendered prompt may have (far beyond any model's context).
MAX_PROMPT_CHARS = 4 * 2**20
#: Largest string, list or integer (in digits) a template's `*` or `**` may build.
_MAX_PRODUCT = 2**20
NO_TEMPLATE = "this model has no chat template: send a prompt to /v1/completions"


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


class RenderBudgetExceeded(TemplateError):
    """A template ran too long or wrote too much."""


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with a deadline per render, checked wherever the template calls out."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._render = threading.local()

    def start(self, limit_s: float) -> None:
        self._render.deadline = time.monotonic() + limit_s

    def check(self) -> None:
        deadline = getattr(self._render, "deadline", None)
        if deadline is not None and time.monotonic() > deadline:
            raise RenderBudgetExceeded("the chat template ran out of time")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        __self.check()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.check()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.check()
        return super().getitem(obj, argument)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.check()
        if operator == "**" and _too_big_power(left, right):
            raise RenderBudgetExceeded("the chat template computes too large a power")
        if operator == "*" and _too_big_product(left, right):
            raise RenderBudgetExceeded("the chat template builds too large a value")
        return super().call_binop(context, operator, left, right)


def _too_big_power(base: Any, exponent: Any) -> bool:
    if not isinstance(base, int) or not isinstance(exponent, int) or abs(base) < 2:
        return False
    return exponent * abs(base).bit_length() > _MAX_PRODUCT


def _too_big_product(left: Any, right: Any) -> bool:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(count, int):
            return len(seq) * count > _MAX_PRODUCT
    return False


class ChatTemplate:
    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        env = _BoundedSandbox(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        self._env = env
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        # As transformers does: JSON in templates keeps non-ASCII text and HTML as is.
        env.filters["tojson"] = lambda value, indent=None: json.dumps(
            value, ensure_ascii=False, indent=indent
        )
        try:
            self._template = env.from_string(source)
        except TemplateError as exc:
            raise CheckpointError(f"the model's chat template does not parse: {exc}") from None
        self.source = source
        self.bos_token, self.eos_token = bos_token, eos_token

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt for the assistant's next turn; InputError when the template refuses."""
        self._env.start(RENDER_LIMIT_S)
        pieces: list[str] = []
        written = 0
        try:
            for piece in self._template.generate(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=True,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            ):
                written += len(piece)
                if written > MAX_PROMPT_CHARS:
                    raise RenderBudgetExceeded(
                        f"the chat template wrote over {MAX_PROMPT_CHARS} characters"
                    )
                self._env.check()
                pieces.append(piece)
            return "".join(pieces)
        except (TemplateError, RecursionError, OverflowError, MemoryError) as exc:
            raise InputError(f"the model's chat template refused the messages: {exc}") from None


def _raise(message: str) -> NoReturn:
    raise TemplateError(message)


def template_from_hf(folder: Path) -> ChatTemplate | None:
    """The chat template of a Hugging Face folder, if it has one."""
    config_path = folder / "tokenizer_config.json"
    config: dict[str, Any] = json.loads(config_path.read_text()) if config_path.is_file() else {}
    jinja = folder / "chat_template.jinja"
    source = jinja.read_text() if jinja.is_file() else config.get("chat_template")
    if isinstance(source, list):  # named templates: the default one
        named = {t.get("name"): t.get("template") for t in source if isinstance(t, dict)}
        source = named.get("default")
    if not isinstance(source, str) or not source:
        return None
    return ChatTemplate(
        source, bos_token=_token(config.get("bos_token")), eos_token=_token(config.get("eos_token"))
    )


def template_from_gguf(meta: dict[str, Any]) -> ChatTemplate | None:
    """The chat template in GGUF metadata, with the BOS and EOS texts it may refer to."""
    source = meta.get("tokenizer.chat_template")
    if not isinstance(source, str) or not source:
        return None
    tokens: list[str] = meta.get("tokenizer.ggml.tokens") or []

    def text(key: str) -> str:
        index = meta.get(key)
        return tokens[int(index)] if index is not None and int(index) < len(tokens) else ""

    return ChatTemplate(
        source,
        bos_token=text("tokenizer.ggml.bos_token_id"),
        eos_token=text("tokenizer.ggml.eos_token_id"),
    )


def _token(value: object) -> str:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""
