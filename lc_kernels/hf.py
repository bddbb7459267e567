"""Layer-contrast decoding and training for Hugging Face causal LMs, with no change to model code.

Works on every transformers version that has the model (the built-in DoLa was removed in 4.56;
this needs no remote code). For decoder-only models with a base model holding a list of decoder
layers, a final norm and an output head: Llama, Mistral, Qwen2/3, Gemma 1–3, GPT-2, GPT-NeoX,
and most others of the same shape.

How a step works: the base model runs with the model's own KV cache; forward pre-hooks on the
candidate decoder layers capture their input hidden states (= Hugging Face's hidden_states[j],
layer 0 being the embedding output) at the last position only; the exits and the final normed
hidden state are stacked and go through the output head in ONE matmul; the model's final-logit
post-processing (Gemma's soft-capping) applies to every exit.
"""
from __future__ import annotations

import contextlib

import torch

from .api import layer_contrast_loss
from .generation import candidate_layers as resolve_candidates, generate

_LAYER_ATTRS = ("layers", "h", "blocks", "block")
_NORM_ATTRS = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "final_norm")


def _text_config(model):
    cfg = model.config
    return cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg


class ModelParts:
    """The pieces of a causal LM that layer contrast needs, found by attribute conventions."""

    def __init__(self, model):
        name = type(model).__name__
        cfg = _text_config(model)
        if getattr(model.config, "is_encoder_decoder", False):
            raise ValueError(f"{name} is an encoder-decoder model; layer contrast here supports decoder-only "
                             f"causal LMs")
        base = getattr(model, "base_model", None)
        if base is None or base is model:
            raise ValueError(f"{name}: no base model found (expected e.g. model.model or model.transformer)")
        self.model, self.base = model, base
        self.layers = next((getattr(base, a) for a in _LAYER_ATTRS
                            if isinstance(getattr(base, a, None), torch.nn.ModuleList)), None)
        if self.layers is None:
            raise ValueError(f"{name}: cannot find the decoder layers (looked for base_model.{'/'.join(_LAYER_ATTRS)})")
        self.norm = next((getattr(base, a) for a in _NORM_ATTRS if isinstance(getattr(base, a, None), torch.nn.Module)), None)
        if self.norm is None:
            raise ValueError(f"{name}: cannot find the final norm (looked for base_model.{'/'.join(_NORM_ATTRS)})")
        self.head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if self.head is None:
            raise ValueError(f"{name}: cannot find the output head (get_output_embeddings() returned None)")
        self.softcap = getattr(cfg, "final_logit_softcapping", None)
        self.num_layers = len(self.layers)
        self.tied = bool(getattr(cfg, "tie_word_embeddings", getattr(model.config, "tie_word_embeddings", True)))

    def logits(self, stacked: torch.Tensor, exit_norm: bool, n_exits: int) -> torch.Tensor:
        """stacked [L', ..., C] whose first n_exits are raw exits (the rest already normed) ->
        logits [L', ..., V] in one matmul with the head, soft-capped like the model's own."""
        if exit_norm and n_exits:
            stacked = torch.cat([self.norm(stacked[:n_exits]), stacked[n_exits:]])
        out = self.head(stacked)
        if self.softcap:
            out = torch.tanh(out / self.softcap) * self.softcap
        return out

    @contextlib.contextmanager
    def capture(self, layers, last_only: bool):
        """Record the input hidden states of the given decoder layers (HF's hidden_states[j])."""
        store = {}
        handles = []
        for j in set(layers):
            def hook(module, args, kwargs, j=j):
                h = args[0] if args else kwargs["hidden_states"]
                store[j] = h[:, -1] if last_only else h
            handles.append(self.layers[j].register_forward_pre_hook(hook, with_kwargs=True))
        try:
            yield store
        finally:
            for h in handles:
                h.remove()

    def run(self, input_ids, attention_mask, layers, exit_norm, last_only, past=None):
        """One base-model forward; returns (logits [L, B, (T,) V], past_key_values)."""
        T = input_ids.shape[1]
        position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)[:, -T:]
        with self.capture(layers, last_only) as store:
            out = self.base(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            past_key_values=past, use_cache=last_only)
        final = out.last_hidden_state[:, -1] if last_only else out.last_hidden_state
        stacked = torch.stack([store[j] for j in layers] + [final])
        return self.logits(stacked, exit_norm, len(layers)), getattr(out, "past_key_values", None)


class _HFAdapter:
    """The interface lc_kernels.generation.generate drives."""

    def __init__(self, model):
        self.parts = ModelParts(model)
        self.num_layers, self.tied = self.parts.num_layers, self.parts.tied
        gen = getattr(model, "generation_config", None)
        eos = getattr(gen, "eos_token_id", None) if gen is not None else None
        if eos is None:
            eos = getattr(model.config, "eos_token_id", None)
        self.eos_token_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        self.pad_token_id = getattr(gen, "pad_token_id", None) if gen is not None else None
        self.device = next(model.parameters()).device

    def start(self, batch, max_len):
        return {"past": None}

    def step(self, state, input_ids, attention_mask, exit_layers, exit_norm):
        logits, state["past"] = self.parts.run(input_ids, attention_mask, exit_layers, exit_norm, True, state["past"])
        return state, logits


@torch.no_grad()
def contrast_generate(model, input_ids, attention_mask=None, max_new_tokens: int = 32, candidate_layers="high",
                      alpha: float = 0.1, divergence: str = "jsd", select: str = "row", exit_norm: bool = True,
                      repetition_penalty: float = 1.0, do_sample: bool = False, temperature: float = 1.0,
                      top_k: int = 0, top_p: float = 1.0, eos_token_id=None, pad_token_id=None, streamer=None,
                      return_dict: bool = False, backend: str = "auto", generator=None):
    """Layer-contrast generation for a Hugging Face causal LM (SPEC §7 keywords).

    input_ids [B, P] LongTensor (left-padded, with attention_mask). Returns LongTensor
    [B, P + new], or with return_dict=True a dict with "sequences", "premature_layers" [B, new]
    (model layer numbers), "scores" (per-step processed contrast scores [B, V]), "tokens_per_s".
    With divergence="dola", select="batch", exit_norm=False, alpha=0.1 the tokens equal
    transformers' built-in generate(dola_layers=...) of versions 4.43–4.55.
    """
    was_training = model.training
    model.eval()
    try:
        return generate(_HFAdapter(model), input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                        candidate_layers=candidate_layers, alpha=alpha, divergence=divergence, select=select,
                        exit_norm=exit_norm, repetition_penalty=repetition_penalty, do_sample=do_sample,
                        temperature=temperature, top_k=top_k, top_p=top_p, eos_token_id=eos_token_id,
                        pad_token_id=pad_token_id, streamer=streamer, return_dict=return_dict, backend=backend,
                        generator=generator)
    finally:
        model.train(was_training)


def layer_contrast_loss_for(model, input_ids, labels, attention_mask=None, candidate_layers="high",
                            exit_norm: bool = True, key_factors=None, num_items_in_batch=None, **loss_kwargs):
    """The layer-contrast loss of a training step for a Hugging Face causal LM.

    input_ids, labels [B, T] (labels -100 where no loss; shifted by one as Hugging Face does:
    position t predicts labels[t + 1]). num_items_in_batch: the global count of labelled tokens
    of the optimizer step (Trainer passes it), so gradient accumulation and data parallelism
    match one big batch. loss_kwargs go to lc_kernels.layer_contrast_loss (alpha, top_u, …).
    """
    # The forward goes through `model` itself, so DDP/FSDP wrappers see it; the final logits are the
    # model's own and the exits are computed in one stacked matmul with the head.
    parts = ModelParts(model.module if hasattr(model, "module") else model)
    layers = resolve_candidates(candidate_layers, parts.num_layers, parts.tied)
    with parts.capture(layers, last_only=False) as store:
        out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    exits = parts.logits(torch.stack([store[j] for j in layers]), exit_norm, len(layers))  # [L-1, B, T, V]
    logits = torch.cat([exits, out.logits.unsqueeze(0).to(exits.dtype)])  # [L, B, T, V]
    return layer_contrast_loss(logits[:, :, :-1], labels[:, 1:], key_factors=key_factors,
                               num_items_in_batch=num_items_in_batch, **loss_kwargs)


def __getattr__(name):
    if name == "LayerContrastTrainer":
        return _trainer_class()
    raise AttributeError(name)


def _trainer_class():
    """transformers.Trainer whose compute_loss is the layer-contrast loss (imported lazily)."""
    from transformers import Trainer

    class LayerContrastTrainer(Trainer):
        """Trainer(..., ) plus layer-contrast options:

            trainer = LayerContrastTrainer(model=model, args=args, train_dataset=ds,
                                           key_factors=kf, candidate_layers="high", loss_kwargs={"top_u": 10})

        Trainer passes num_items_in_batch (the global label count of the step); under data
        parallelism Trainer also multiplies the loss by the number of processes, so the averaged
        gradients equal those of one big batch.
        """

        def __init__(self, *args, key_factors=None, candidate_layers="high", exit_norm=True, loss_kwargs=None, **kw):
            super().__init__(*args, **kw)
            self.lc_options = dict(key_factors=key_factors, candidate_layers=candidate_layers, exit_norm=exit_norm,
                                   **(loss_kwargs or {}))

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = layer_contrast_loss_for(model, inputs["input_ids"], inputs["labels"],
                                           attention_mask=inputs.get("attention_mask"),
                                           num_items_in_batch=num_items_in_batch, **self.lc_options)
            return (loss, None) if return_outputs else loss

    return LayerContrastTrainer
