"""Evaluations: TruthfulQA multiple choice (MC1/MC2/MC3) for the final layer vs layer contrast."""
