"""`lc-kernels generate` and `lc-kernels train`: the model-level commands of the CLI."""
from __future__ import annotations

import sys
import time
from importlib import resources


def data_file(name: str) -> str:
    return str(resources.files("lc_kernels") / "data" / name)


def parse_layers(text: str):
    if text in ("high", "low"):
        return text
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--layers must be 'high', 'low' or a comma-separated list of layers; got {text!r}")


def load_model(name: str):
    from .model import LlamaConfig, LlamaModel, load_pretrained
    if name == "tiny":
        from .model.byte_tokenizer import ByteTokenizer
        tok = ByteTokenizer()
        import torch
        torch.manual_seed(0)
        return LlamaModel(LlamaConfig.tiny(vocab_size=len(tok), max_seq_len=2048)).eval(), tok
    return load_pretrained(name)


class PrintStreamer:
    """Prints each row-0 token as it is produced (HF streamer protocol: put / end)."""

    def __init__(self, tokenizer, prefix: str = ""):
        self.tok, self.ids, self.shown, self.prefix = tokenizer, [], "", prefix
        self.started = False

    def put(self, value):
        if not self.started:
            sys.stdout.write(self.prefix)
            self.started = True
        self.ids.append(int(value.reshape(-1)[0]))
        text = self.tok.decode(self.ids)
        sys.stdout.write(text[len(self.shown):])
        sys.stdout.flush()
        self.shown = text

    def end(self):
        sys.stdout.write("\n")
        sys.stdout.flush()


def run_generation(model, tok, prompt: str, strategy: str, args, stream: bool = True):
    text = tok.chat_prompt(prompt) if not args.no_chat else prompt
    ids, mask = tok.batch([text])
    streamer = PrintStreamer(tok, f"  [{strategy}] ") if stream else None
    out = model.generate(ids, attention_mask=mask, max_new_tokens=args.max_new_tokens, strategy=strategy,
                         candidate_layers=parse_layers(args.layers), alpha=args.alpha,
                         repetition_penalty=args.repetition_penalty, backend=args.backend, streamer=streamer,
                         return_dict=True)
    new = out["sequences"][0, ids.shape[1]:]
    prem = [int(p) for p in out["premature_layers"][0] if int(p) >= 0]
    return tok.decode(new).strip(), out["tokens_per_s"], prem


def cmd_generate(args) -> int:
    t = time.perf_counter()
    model, tok = load_model(args.model)
    print(f"loaded {args.model} in {time.perf_counter() - t:.1f} s ({model.config.n_layers} layers, "
          f"V = {model.config.vocab_size})")
    strategies = ["greedy", "contrast"] if args.strategy == "both" else [args.strategy]
    for prompt in args.prompt:
        print(f"\nQ: {prompt}")
        results = {s: run_generation(model, tok, prompt, s, args) for s in strategies}
        if len(strategies) == 2:
            print_side_by_side(results)
        else:
            (s, (text, rate, prem)), = results.items()
            print(f"  {rate:.1f} tokens/s" + (f", premature layers {summarise(prem)}" if prem else ""))
    return 0


def summarise(prem: list[int]) -> str:
    from collections import Counter
    return ", ".join(f"{layer}×{n}" for layer, n in sorted(Counter(prem).items()))


def print_side_by_side(results: dict):
    import textwrap
    width = 48
    cols = {s: textwrap.wrap(text, width) or [""] for s, (text, _, _) in results.items()}
    rows = max(len(c) for c in cols.values())
    print("  " + " | ".join(f"{s:<{width}}" for s in cols))
    print("  " + "-+-".join("-" * width for _ in cols))
    for i in range(rows):
        print("  " + " | ".join(f"{(c[i] if i < len(c) else ''):<{width}}" for c in cols.values()))
    stats = [f"{rate:.1f} tok/s" + (f"; premature {summarise(p)}" if p else "") for _, rate, p in results.values()]
    print("  " + " | ".join(f"{s:<{width}}" for s in stats))


def cmd_train(args) -> int:
    from .key_factors import KeyFactors
    from .train import TrainConfig, answer_accuracy, load_qa, train

    data = load_qa(args.data)
    model, tok = load_model(args.model)
    kf = KeyFactors.from_triples(args.key_factors, tok) if args.key_factors else None
    if kf is not None and kf.report:
        print(kf.report)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
                      max_steps=args.max_steps, candidate_layers=parse_layers(args.layers), alpha=args.alpha,
                      top_u=args.top_u, backend=args.backend, save_every=args.save_every, max_len=args.max_len)
    # the last --eval-limit examples are held out of training and used for the final evaluation
    n_eval = min(args.eval_limit, len(data) - 1)
    train_rows, eval_rows = (data[:-n_eval], data[-n_eval:]) if n_eval > 0 else (data, [])
    state = train(model, tok, train_rows, cfg, key_factors=kf, out_dir=args.out, resume=args.resume)
    print(f"trained {state['step']} steps, last loss {state['loss']:.4f}, {state['tokens_per_s']:.0f} tokens/s"
          + (f"; checkpoint in {args.out}" if args.out else ""))
    if n_eval:
        for strategy in ("greedy", "contrast"):
            acc = answer_accuracy(model, tok, eval_rows, strategy, candidate_layers=cfg.candidate_layers,
                                  backend=args.backend, progress=True)
            print(f"answer accuracy ({strategy}) on {n_eval} held-out questions: {acc:.3f}")
    return 0


def cmd_eval(args) -> int:
    from .eval import truthfulqa as tq

    cats = [c.strip() for c in args.categories.split(",")] if args.categories else None
    rows = tq.load_truthfulqa(args.csv, cats)[: args.limit or None]
    model, tok = load_model(args.model)
    result = tq.evaluate(model, tok, rows, candidate_layers=parse_layers(args.layers), divergence=args.divergence,
                         backend=args.backend)
    result["model"] = args.model
    print(tq.format_table(result))
    if args.out:
        tq.save(result, args.out)
        print(f"saved to {args.out}")
    return 0


def add_model_commands(sub):
    e = sub.add_parser("eval", help="evaluations (truthfulqa)")
    e.add_argument("task", choices=["truthfulqa"])
    e.add_argument("--csv", required=True, help="the standard TruthfulQA.csv")
    e.add_argument("--model", default="smollm2-135m")
    e.add_argument("--categories", default=None, help="comma-separated, e.g. Health,Nutrition")
    e.add_argument("--limit", type=int, default=0, help="first N questions (0: all)")
    e.add_argument("--layers", default="high")
    e.add_argument("--divergence", default="dola", choices=["dola", "jsd", "kl"])
    e.add_argument("--backend", default="auto")
    e.add_argument("--out", default=None, help="JSON file for the results")
    e.set_defaults(fn=cmd_eval)

    g = sub.add_parser("generate", help="answer prompts with layer-contrast and/or greedy decoding")
    g.add_argument("prompt", nargs="+")
    g.add_argument("--model", default="smollm2-135m", help="smollm2-135m (default), a .gguf file, a HF checkpoint dir, or 'tiny'")
    g.add_argument("--strategy", choices=["contrast", "greedy", "both"], default="contrast")
    g.add_argument("--layers", default="high", help="'high', 'low' or e.g. 16,18,20")
    g.add_argument("--alpha", type=float, default=0.1)
    g.add_argument("--max-new-tokens", type=int, default=32)
    g.add_argument("--repetition-penalty", type=float, default=1.2)
    g.add_argument("--backend", default="auto")
    g.add_argument("--no-chat", action="store_true", help="use the prompt as is (no chat template)")
    g.set_defaults(fn=cmd_generate)

    t = sub.add_parser("train", help="fine-tune with the layer-contrast loss")
    t.add_argument("--model", default="smollm2-135m", help="smollm2-135m, a .gguf/checkpoint path, or 'tiny' (random)")
    t.add_argument("--data", default=data_file("medical_qa.jsonl"), help="JSONL of {prompt, answer}")
    t.add_argument("--key-factors", default=data_file("medical_key_factors.jsonl"), help="typed-triples JSONL ('' for none)")
    t.add_argument("--out", default=None, help="checkpoint directory (safetensors)")
    t.add_argument("--resume", default=None, help="checkpoint directory to resume from")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--grad-accum", type=int, default=1)
    t.add_argument("--lr", type=float, default=5e-5)
    t.add_argument("--max-len", type=int, default=128)
    t.add_argument("--layers", default="high")
    t.add_argument("--alpha", type=float, default=0.1)
    t.add_argument("--top-u", type=int, default=10)
    t.add_argument("--backend", default="auto")
    t.add_argument("--save-every", type=int, default=0)
    t.add_argument("--eval-limit", type=int, default=32,
                   help="the last N examples are held out for the final accuracy check (0: none)")
    t.set_defaults(fn=cmd_train)
