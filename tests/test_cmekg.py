"""Key factors from CMeKG (PyCMeKG is installed by make test)."""
from lc_kernels.cmekg import PREDICATES, cmekg_triples, key_factors_from_cmekg, load_cmekg


class CharTokenizer:
    def __init__(self):
        self.vocab = {}

    def encode(self, text, add_special_tokens=False):
        return [self.vocab.setdefault(ch, len(self.vocab)) for ch in text]

    def __len__(self):
        return 20000


def test_triples_map_onto_the_six_relation_classes():
    graph = load_cmekg()
    assert len(graph) > 10000
    subject = next(s for s, preds in graph.items() if "常见症状" in preds)
    triples = list(cmekg_triples(graph, [subject]))
    assert triples and all(t.head == subject for t in triples)
    assert {t.relation_class for t in triples} <= {c for c, _, _ in PREDICATES.values()}
    assert any(t.relation_class == "clinical_manifestation" and t.tail_type == "symptom_sign" for t in triples)


def test_key_factors_for_a_chinese_tokenizer():
    graph = load_cmekg()
    subjects = [s for s, preds in graph.items() if "常见症状" in preds][:5]
    kf = key_factors_from_cmekg(CharTokenizer(), subjects, graph=graph)
    assert kf.entity_ids.numel() > 0 and kf.relation_ids.numel() > 0 and "Φ covers" in kf.report
