"""KeyFactors: ids, terms (with/without a leading space, coverage warning), typed triples."""
import json

import pytest
import torch

import lc_kernels as lck
from lc_kernels.key_factors import load_triples, relation_class


class WordTokenizer:
    """A tiny tokenizer: one id per word piece of 3 letters, a leading space is its own id."""

    def __init__(self):
        self.vocab = {}

    def encode(self, text, add_special_tokens=False):
        ids = []
        if text.startswith(" "):
            ids.append(self._id("▁"))
            text = text[1:]
        for i in range(0, len(text), 3):
            ids.append(self._id(text[i:i + 3]))
        return ids

    def _id(self, piece):
        return self.vocab.setdefault(piece, len(self.vocab))

    def __len__(self):
        return 1000


def test_ids_and_masks():
    kf = lck.KeyFactors(entity_ids=[5, 3, 3], relation_ids=torch.tensor([7]))
    assert kf.entity_ids.tolist() == [3, 5] and kf.relation_ids.tolist() == [7]
    ent, rel = kf.masks(10)
    assert ent.nonzero().squeeze(1).tolist() == [3, 5] and rel.nonzero().squeeze(1).tolist() == [7]
    with pytest.raises(ValueError, match="negative"):
        lck.KeyFactors(entity_ids=[-1])
    with pytest.raises(TypeError):
        lck.KeyFactors(entity_ids=[0.5])


def test_from_terms_first_and_all_pieces():
    tok = WordTokenizer()
    first = lck.KeyFactors.from_terms(tok, entities=["aspirin"], relations=["treats"], pieces="first")
    # "aspirin" -> asp|iri|n ; " aspirin" -> ▁|asp|iri|n: first pieces are asp and ▁
    assert sorted(first.entity_ids.tolist()) == sorted({tok.vocab["asp"], tok.vocab["▁"]})
    every = lck.KeyFactors.from_terms(tok, entities=["aspirin"], pieces="all")
    assert set(every.entity_ids.tolist()) == {tok.vocab[p] for p in ("asp", "iri", "n", "▁")}
    assert "covers 3 of 1000 tokens (0.30 % of the vocabulary)" in first.report  # {asp, ▁, tre}


def test_from_terms_warns_above_one_percent():
    tok = WordTokenizer()
    with pytest.warns(UserWarning, match="above 1 %"):
        lck.KeyFactors.from_terms(tok, entities=[f"term{i:03d}" for i in range(20)], pieces="all")
    with pytest.raises(ValueError, match="pieces"):
        lck.KeyFactors.from_terms(tok, entities=["x"], pieces="some")


def test_triples_file(tmp_path):
    path = tmp_path / "kg.jsonl"
    rows = [
        {"head": "influenza", "head_type": "disease", "relation": "clinical manifestation", "tail": "fever", "tail_type": "symptom"},
        {"head": "influenza", "head_type": "disease", "relation": "treated with", "tail": "oseltamivir", "tail_type": "drug"},
        {"head": "tuberculosis", "head_type": "disease", "relation": "caused by", "tail": "Mycobacterium tuberculosis", "tail_type": "pathogen"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    triples = load_triples(path)
    assert [t.relation_class for t in triples] == ["clinical_manifestation", "treatment_drug", "cause"]
    assert triples[0].tail_type == "symptom_sign" and triples[2].tail_type == "pathogen"
    kf = lck.KeyFactors.from_triples(path, WordTokenizer())
    assert kf.entity_ids.numel() > 0 and kf.relation_ids.numel() > 0


def test_bad_triples_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = {"head": "a", "head_type": "disease", "relation": "cause", "tail": "b", "tail_type": "pathogen"}
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        load_triples(path)
    path.write_text(json.dumps(dict(good, head_type="planet")) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: head_type='planet'"):
        load_triples(path)
    path.write_text(json.dumps(dict(good, relation="is friends with")) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: relation 'is friends with'"):
        load_triples(path)


def test_relation_classes():
    assert relation_class("contraindicated drug") == "contraindicated_drug"
    assert relation_class("site of onset") == "site_of_onset"
    assert relation_class("diagnostic test") == "diagnosis_treatment"
    assert relation_class("临床表现") == "clinical_manifestation"
