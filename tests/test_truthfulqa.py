"""TruthfulQA MC evaluation: metric definitions and a run on a handful of questions (tiny model)."""
import json
import os
import subprocess
import sys

import pytest
import torch

from lc_kernels.eval.truthfulqa import evaluate, load_truthfulqa, mc_metrics, score_answers
from lc_kernels.model import LlamaConfig, LlamaModel
from lc_kernels.model.byte_tokenizer import ByteTokenizer

CSV = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "eval", "TruthfulQA.csv")


def test_mc_metric_definitions():
    m = mc_metrics([0.0, -1.0, -5.0], [-2.0, -3.0], best_index=0)
    assert m["MC1"] == 1.0 and m["MC3"] == pytest.approx(2 / 3)
    import math
    e = [math.exp(x) for x in (0.0, -1.0, -5.0, -2.0, -3.0)]
    assert m["MC2"] == pytest.approx(sum(e[:3]) / sum(e))
    assert mc_metrics([-4.0, 0.0], [-1.0], best_index=0)["MC1"] == 0.0


def test_csv_loading_and_categories():
    rows = load_truthfulqa(CSV)
    assert len(rows) == 817
    health = load_truthfulqa(CSV, ["Health"])
    assert len(health) == 55 and all(r["best"] in r["true"] and r["false"] for r in health)
    assert all(a.endswith(".") for r in health for a in r["true"] + r["false"])


def test_scores_are_sums_of_token_log_probs():
    torch.manual_seed(0)
    tok = ByteTokenizer()
    model = LlamaModel(LlamaConfig.tiny(vocab_size=259, n_layers=4, max_seq_len=1024)).eval()
    base, con = score_answers(model, tok, "Why?", ["Yes.", "No, never."], [1, 2], "dola", "torch")
    # baseline of one answer, by hand: full forward, log_softmax of the final layer
    prompt = tok.encode("\n\nQ: Why?\nA:")
    from lc_kernels.eval.truthfulqa import QA_PRIMER
    prompt = tok.encode(f"{QA_PRIMER}\n\nQ: Why?\nA:")
    ids = torch.tensor([prompt + tok.encode(" Yes.")])
    with torch.no_grad():
        lp = torch.log_softmax(model(ids)[-1, 0], -1)
    want = sum(float(lp[t - 1, ids[0, t]]) for t in range(len(prompt), ids.shape[1]))
    assert base[0] == pytest.approx(want, abs=1e-3)
    assert all(s < 0 for s in base + con) and len(con) == 2


def test_eval_cli_on_a_handful_of_questions(tmp_path):
    out = tmp_path / "tqa.json"
    run = subprocess.run([sys.executable, "-m", "lc_kernels", "eval", "truthfulqa", "--csv", CSV, "--model", "tiny",
                          "--categories", "Nutrition", "--limit", "3", "--layers", "1,2", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "| baseline |" in run.stdout and "| contrast |" in run.stdout
    result = json.loads(out.read_text())
    assert result["questions"] == 3
    for name in ("baseline", "contrast"):
        assert all(0.0 <= result["summary"][name][k] <= 1.0 for k in ("MC1", "MC2", "MC3"))
