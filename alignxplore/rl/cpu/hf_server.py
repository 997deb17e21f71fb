"""The ``hf`` rollout server: HF transformers sampling behind verl's token-in/token-out API.

One Ray actor per rollout replica (created by :class:`.hf_rollout.HFReplica`). It answers the
calls verl 0.9.1 makes on a rollout server: ``generate`` (from the agent loop, through
``LLMServerClient``) returning verl's ``TokenOutput`` (response token ids + their log-probs),
and the control calls of ``RolloutReplica`` / ``CheckpointEngineManager`` (``wake_up``,
``sleep``, ``clear_kv_cache``, ``abort_all_requests``, ``resume_generation``...). Weights
arrive from the FSDP actor through :meth:`HFRolloutServer.update_weights`.

Sampling is an explicit decode loop over the HF model with its KV cache, not
``model.generate``: generate() merges the checkpoint's ``generation_config.json`` defaults
(Qwen3 ships top_k=20, temperature 0.6) into unset parameters, and verl's semantics are
exact: ``top_k=-1`` means no top-k, the returned log-prob is
``log_softmax(logits / temperature)`` of the sampled token before top-k/top-p filtering
(what the actor recomputes, and vLLM's ``processed_logprobs`` without filtering), and the
EOS token is part of the response.

CPU only, float32, one request at a time (a 2-core box gains nothing from concurrency, and
sequential decoding keeps each request's log-probs independent of the others).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Optional

import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sampling:
    """verl's rollout sampling parameters, normalised (vLLM conventions)."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    repetition_penalty: float = 1.0
    logprobs: bool = True
    seed: Optional[int] = None
    ignore_eos: bool = False

    @classmethod
    def from_verl(cls, params: dict[str, Any], *, default_max_tokens: int, max_possible: int) -> "Sampling":
        params = dict(params)
        max_tokens = params.pop("max_tokens", params.pop("max_new_tokens", default_max_tokens))
        if max_possible < 1:
            raise ValueError(f"prompt leaves no room to generate (max_model_len reached by {1 - max_possible} tokens)")
        known = {k: params.pop(k) for k in list(params) if k in cls.__dataclass_fields__}
        if params:
            logger.debug("hf rollout ignores sampling params %s", sorted(params))
        top_k = known.get("top_k", -1)
        return cls(
            max_tokens=max(1, min(int(max_tokens), max_possible)),
            temperature=float(known.get("temperature", 1.0)),
            top_p=float(known.get("top_p", 1.0)),
            top_k=-1 if top_k is None or int(top_k) <= 0 else int(top_k),
            repetition_penalty=float(known.get("repetition_penalty", 1.0) or 1.0),
            logprobs=bool(known.get("logprobs", True)),
            seed=known.get("seed"),
            ignore_eos=bool(known.get("ignore_eos", False)),
        )


def _filter_logits(scaled: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Top-k then top-p (nucleus) filtering of a 1-D logit row; removed entries become -inf."""
    out = scaled
    if top_k > 0 and top_k < out.numel():
        kth = torch.topk(out, top_k).values[-1]
        out = out.masked_fill(out < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(out, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        drop_sorted = cumulative - torch.softmax(sorted_logits, dim=-1) >= top_p  # keep the token crossing p
        drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
        out = out.masked_fill(drop, float("-inf"))
    return out


@torch.no_grad()
def sample_tokens(
    model, prompt_ids: list[int], sampling: Sampling, eos_ids: set[int], generator: torch.Generator
) -> tuple[list[int], list[float], str]:
    """Decode one response. Returns (token ids, log-probs, finish reason "stop"|"length")."""
    device = next(model.parameters()).device
    input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    past = None
    tokens: list[int] = []
    log_probs: list[float] = []
    seen = set(prompt_ids)
    for _ in range(sampling.max_tokens):
        out = model(input_ids=input_ids, past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = out.logits[0, -1].float()
        if sampling.repetition_penalty != 1.0 and seen:
            idx = torch.tensor(sorted(seen), device=logits.device)
            picked = logits[idx]
            logits[idx] = torch.where(
                picked < 0, picked * sampling.repetition_penalty, picked / sampling.repetition_penalty
            )
        if sampling.temperature > 0:
            scaled = logits / sampling.temperature
            probs = torch.softmax(_filter_logits(scaled, sampling.top_k, sampling.top_p), dim=-1)
            token = int(torch.multinomial(probs, 1, generator=generator))
        else:  # greedy (validation); log-prob of the raw distribution
            scaled = logits
            token = int(torch.argmax(logits))
        tokens.append(token)
        log_probs.append(float(torch.log_softmax(scaled, dim=-1)[token]))
        seen.add(token)
        if token in eos_ids and not sampling.ignore_eos:
            return tokens, log_probs, "stop"
        input_ids = torch.tensor([[token]], dtype=torch.long, device=device)
    return tokens, log_probs, "length"


class HFRolloutServer:
    """Ray actor body (wrapped with ``ray.remote`` by the replica): one HF model on CPU."""

    def __init__(self, config, model_config, replica_rank: int, seed: int = 0):
        from transformers import AutoModelForCausalLM

        self.config = config
        self.replica_rank = replica_rank
        path = _model_path(model_config)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
        self.model.eval()
        self.eos_ids = _eos_ids(self.model, path)
        self.generator = torch.Generator().manual_seed(int(seed) + 1009 * replica_rank)
        self.global_steps: Optional[int] = None
        self._lock = asyncio.Lock()
        self._aborting = False
        self._weight_updates = 0

    # ---- generation -------------------------------------------------------------------------
    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Optional[list[Any]] = None,
        video_data: Optional[list[Any]] = None,
        audio_data: Optional[list[Any]] = None,
        mm_processor_kwargs: Optional[dict[str, Any]] = None,
        **_ignored: Any,
    ):
        from verl.workers.rollout.replica import TokenOutput

        if image_data is not None or video_data is not None or audio_data is not None:
            raise NotImplementedError("the hf CPU rollout is text-only")
        prompt_ids = [int(t) for t in prompt_ids]
        prompt_length = int(self.config.prompt_length)
        response_length = int(self.config.response_length)
        max_model_len = int(self.config.max_model_len or (prompt_length + response_length))
        sampling = Sampling.from_verl(
            sampling_params,
            default_max_tokens=min(response_length, prompt_length + response_length - len(prompt_ids)),
            max_possible=max_model_len - len(prompt_ids),
        )
        extra = {"global_steps": self.global_steps}
        async with self._lock:
            if self._aborting:
                return TokenOutput(token_ids=[], log_probs=None, stop_reason="aborted", extra_fields=extra)
            tokens, log_probs, _finish = await asyncio.to_thread(
                sample_tokens, self.model, prompt_ids, sampling, self.eos_ids, self.generator
            )
        return TokenOutput(
            token_ids=tokens,
            log_probs=log_probs if sampling.logprobs else None,
            stop_reason="completed",
            num_preempted=0,
            extra_fields=extra,
        )

    # ---- weights ------------------------------------------------------------------------------
    async def update_weights(self, named_tensors: dict[str, torch.Tensor], global_steps: Optional[int] = None):
        """Copy full (unsharded) tensors from the FSDP actor into the model, by HF name.

        An unknown name is an error (a silent partial update would make the rollout sample from
        a different policy than the one trained); tied weights may arrive under either name."""
        async with self._lock:
            state = self.model.state_dict()
            unknown = sorted(set(named_tensors) - set(state))
            if unknown:
                raise KeyError(f"hf rollout: weights not in the model: {unknown[:5]} ({len(unknown)} in all)")
            with torch.no_grad():
                for name, tensor in named_tensors.items():
                    target = state[name]
                    if target.shape != tensor.shape:
                        raise ValueError(f"hf rollout: {name} has shape {tuple(tensor.shape)}, model {tuple(target.shape)}")
                    target.copy_(tensor.to(dtype=target.dtype))
            self._weight_updates += 1
            if global_steps is not None:
                self.global_steps = global_steps
        return len(named_tensors)

    async def get_state_dict(self) -> dict[str, torch.Tensor]:
        """For tests: the weights the server samples from."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    async def weight_update_count(self) -> int:
        return self._weight_updates

    # ---- control calls verl makes on every rollout server (no GPU memory to free on CPU) ------
    async def wake_up(self, tags: Optional[list[str]] = None):
        return None

    async def sleep(self):
        return None

    async def clear_kv_cache(self):
        return None  # the KV cache lives only inside one request's decode loop

    async def release_kv_cache(self):
        return None

    async def resume_kv_cache(self):
        return None

    async def wait_for_requests_to_drain(self):
        async with self._lock:
            return None

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict:
        # A request being decoded finishes (it is short on CPU); queued ones return "aborted"
        # until resume_generation, as verl's partial-rollout contract expects.
        self._aborting = True
        return {"aborted_count": 0, "request_ids": []}

    async def resume_generation(self):
        self._aborting = False

    async def set_global_steps(self, global_steps: int):
        self.global_steps = global_steps

    async def start_profile(self, **kwargs):
        return None

    async def stop_profile(self):
        return None


def _model_path(model_config) -> str:
    for key in ("local_path", "path"):
        value = model_config.get(key) if hasattr(model_config, "get") else getattr(model_config, key, None)
        if value:
            return str(value)
    raise ValueError("hf rollout: model_config has neither local_path nor path")


def _eos_ids(model, path: str) -> set[int]:
    """EOS ids as vLLM uses them: generation_config.eos_token_id (int or list) plus the tokenizer's."""
    ids: set[int] = set()
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is not None:
        ids.update([eos] if isinstance(eos, int) else list(eos))
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path)
        if tok.eos_token_id is not None:
            ids.add(int(tok.eos_token_id))
    except (OSError, ValueError):
        pass
    if not ids:
        raise ValueError(f"hf rollout: no eos_token_id in {path} (generation_config or tokenizer)")
    return ids
