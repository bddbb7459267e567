"""Model-level decoding speed on SmolLM2-135M (CPU by default): tokens/s of greedy vs layer-contrast
decoding with the thin model and with lc_kernels.hf.contrast_generate, against transformers'
built-in DoLa (generate(dola_layers="high"), transformers ≤ 4.55), same prompts, one process.

    python benchmarks/bench_model.py [--new-tokens 32] [--quick]
Writes benchmarks/results/<machine>/model_decode.{md,json}.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_description, markdown_table, write_result  # noqa: E402

PROMPTS = ["What is the capital of France?", "Which organ produces insulin?", "What causes tuberculosis?"]


def tokens_per_s(fn, ids_list, new_tokens, repeat=2):
    """Median over repeats of (generated tokens / seconds), all prompts one after another (batch 1)."""
    fn(ids_list[0])  # warm-up
    rates = []
    for _ in range(repeat):
        n, t0 = 0, time.perf_counter()
        for ids in ids_list:
            out = fn(ids)
            n += out.shape[1] - ids.shape[1]
        rates.append(n / (time.perf_counter() - t0))
    return sorted(rates)[len(rates) // 2]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="4 new tokens, one repeat (smoke run)")
    args = ap.parse_args(argv)
    new = 4 if args.quick else args.new_tokens
    repeat = 1 if args.quick else 3
    from lc_kernels.model import load_pretrained
    from lc_kernels.model.loading import smollm2_path
    model, tok = load_pretrained("smollm2-135m")
    ids_list = [tok.batch([tok.chat_prompt(p)])[0] for p in PROMPTS]
    # fixed length: no EOS, so every method generates exactly `new` tokens
    common = dict(max_new_tokens=new, eos_token_id=[-1])
    rows = []
    thin = {s: tokens_per_s(lambda ids, s=s: model.generate(ids, strategy=s, **common), ids_list, new, repeat)
            for s in ("greedy", "contrast")}
    rows.append(dict(impl="thin model greedy", tokens_per_s=thin["greedy"], vs_greedy=1.0))
    rows.append(dict(impl="thin model contrast (high)", tokens_per_s=thin["contrast"],
                     vs_greedy=thin["contrast"] / thin["greedy"]))
    try:
        import transformers
        from lc_kernels.hf import contrast_generate
        path = smollm2_path()
        hf = transformers.LlamaForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                           torch_dtype=torch.float32).eval()
        hf.lm_head.weight = hf.model.embed_tokens.weight
        hf.generation_config.pad_token_id = 0
        g = lambda ids, **kw: hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,  # noqa: E731
                                          max_new_tokens=new, eos_token_id=None, **kw)
        hf_greedy = tokens_per_s(lambda ids: g(ids), ids_list, new, repeat)
        ours = tokens_per_s(lambda ids: contrast_generate(hf, ids, **common), ids_list, new, repeat)
        rows.append(dict(impl=f"transformers {transformers.__version__} greedy", tokens_per_s=hf_greedy,
                         vs_greedy=hf_greedy / thin["greedy"]))
        rows.append(dict(impl="lc_kernels.hf.contrast_generate (high)", tokens_per_s=ours, vs_greedy=ours / thin["greedy"]))
        if hasattr(transformers.GenerationMixin, "_dola_decoding"):
            dola = tokens_per_s(lambda ids: g(ids, dola_layers="high"), ids_list, new, repeat)
            rows.append(dict(impl=f"transformers {transformers.__version__} DoLa (high)", tokens_per_s=dola,
                             vs_greedy=dola / thin["greedy"]))
            rows.append(dict(impl="ratio: thin contrast / transformers DoLa", tokens_per_s=thin["contrast"] / dola))
            rows.append(dict(impl="ratio: hf.contrast_generate / transformers DoLa", tokens_per_s=ours / dola))
    except ImportError as e:
        rows.append(dict(impl=f"transformers not installed ({e})"))
    table = markdown_table(rows, ["impl", "tokens_per_s", "vs_greedy"])
    header = (f"Machine: {machine_description()}\nCommand: python benchmarks/bench_model.py"
              f"{' --quick' if args.quick else ''}\nSmolLM2-135M-Instruct fp32, batch 1, {new} new tokens, "
              f"{len(PROMPTS)} prompts, median of {repeat}. vs_greedy: relative to the thin model's greedy.\n")
    write_result("model_decode", header, table, rows, save=not args.quick)


if __name__ == "__main__":
    main()
