"""Chat templates: found where models keep them, rendered as transformers renders them, and
their refusals reported as input errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tierwise_runtime.chat import ChatMessage, ChatTemplate, template_from_hf
from tierwise_runtime.engine import ChatEngine, Engine, SamplingParams
from tierwise_runtime.errors import CheckpointError, InputError

ASK = [ChatMessage("system", "You answer in one word."),
       ChatMessage("user", "What is the capital of France?")]  # fmt: skip
TURNS = "{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}"


@pytest.mark.slow
def test_smollm2_chat_ids_are_transformers_apply_chat_template(
    smollm: Callable[[str], Engine],
) -> None:
    from transformers import AutoTokenizer

    from tierwise_runtime.sources import resolve_source

    engine = smollm("fp32")
    assert isinstance(engine, ChatEngine)
    gguf = resolve_source("builtin://smollm2-135m")
    reference = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    for messages in (ASK, ASK[1:], [*ASK, ChatMessage("assistant", "Paris"),
                                    ChatMessage("user", "And of Italy?")]):  # fmt: skip
        wire = [{"role": m.role, "content": m.content} for m in messages]
        want = reference.apply_chat_template(wire, add_generation_prompt=True, tokenize=True)
        assert engine.chat_ids(messages) == list(want["input_ids"])


@pytest.mark.slow
def test_smollm2_answers_a_chat_question(smollm: Callable[[str], Engine]) -> None:
    engine = smollm("fp32")
    assert isinstance(engine, ChatEngine)
    ids = engine.chat_ids(ASK)
    steps = engine.generate([ids], [SamplingParams(max_tokens=8, temperature=0)])  # type: ignore[union-attr]
    answer = engine.detokenize([s[0] for s in steps if s[0] is not None])  # type: ignore[union-attr]
    assert "Paris" in answer, answer


def test_a_hugging_face_folder_keeps_its_template_in_the_tokenizer_config(
    tmp_path: Path,
) -> None:
    config = {"chat_template": TURNS, "bos_token": "<s>", "eos_token": {"content": "</s>"}}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    template = template_from_hf(tmp_path)
    assert template is not None
    assert template.render(ASK[1:]) == "[user] What is the capital of France?</s>"


def test_named_templates_give_the_default_and_a_jinja_file_wins(tmp_path: Path) -> None:
    named = [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": TURNS}]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": named}))
    template = template_from_hf(tmp_path)
    assert template is not None and template.source == TURNS
    (tmp_path / "chat_template.jinja").write_text("from the file")
    template = template_from_hf(tmp_path)
    assert template is not None and template.render(ASK) == "from the file"


def test_a_folder_without_a_template_has_none(tmp_path: Path) -> None:
    assert template_from_hf(tmp_path) is None
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>"}))
    assert template_from_hf(tmp_path) is None


def test_a_template_that_refuses_the_messages_raises_an_input_error() -> None:
    strict = ChatTemplate(
        "{% if messages[0].role != 'user' %}"
        "{{ raise_exception('Conversation roles must start with user') }}{% endif %}ok"
    )
    assert strict.render(ASK[1:]) == "ok"
    with pytest.raises(InputError, match="Conversation roles must start with user"):
        strict.render(ASK)


def test_a_template_that_does_not_parse_is_a_checkpoint_error() -> None:
    with pytest.raises(CheckpointError, match="chat template does not parse"):
        ChatTemplate("{% for m in messages %}")


def test_templates_run_sandboxed() -> None:
    escape = ChatTemplate("{{ messages.__class__.__mro__ }}")
    with pytest.raises(InputError):
        escape.render(ASK)
