"""Key factors for Chinese medical models from CMeKG (the `PyCMeKG` package, MIT, optional).

CMeKG is a dict subject → predicate → [objects]. Predicates are mapped onto the six relation
classes below; subjects and objects become entity terms, the predicates' Chinese phrases become
relation terms. Entity classes are inferred from the relation (e.g. the object of 常见症状 is a
symptom/sign, the subject a disease); CMeKG itself carries no entity types, so these are
approximations used only for bookkeeping — the loss uses the token sets.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from .key_factors import KeyFactors, Triple

# predicate → (relation class, head type, tail type)
PREDICATES = {
    "常见症状": ("clinical_manifestation", "disease", "symptom_sign"),
    "临床表现": ("clinical_manifestation", "disease", "symptom_sign"),
    "常见发病部位": ("site_of_onset", "disease", "body_part"),
    "发病部位": ("site_of_onset", "disease", "body_part"),
    "常见病因": ("cause", "disease", "pathogen"),
    "病因": ("cause", "disease", "pathogen"),
    "药物治疗": ("treatment_drug", "disease", "chemical_drug"),
    "治疗药物": ("treatment_drug", "disease", "chemical_drug"),
    "禁忌": ("contraindicated_drug", "chemical_drug", "disease"),
    "检查": ("diagnosis_treatment", "disease", "instrument"),
    "辅助检查": ("diagnosis_treatment", "disease", "instrument"),
    "手术治疗": ("diagnosis_treatment", "disease", "instrument"),
}


def load_cmekg() -> dict:
    try:
        from pyCMeKG.knowledgeGraph import KnowledgeGraph
    except ImportError:
        raise ImportError("CMeKG key factors need the 'PyCMeKG' package: pip install PyCMeKG "
                          "(or `pip install lc_kernels[cmekg]`)") from None
    return KnowledgeGraph().db_dic


def cmekg_triples(graph: dict | None = None, subjects: Iterable[str] | None = None,
                  max_objects: int = 20) -> Iterator[Triple]:
    """Typed triples from CMeKG for the mapped predicates (all subjects, or the given ones)."""
    graph = load_cmekg() if graph is None else graph
    for subject in (graph if subjects is None else subjects):
        for predicate, objects in graph.get(subject, {}).items():
            if predicate not in PREDICATES or not isinstance(objects, list):
                continue
            rel, head_type, tail_type = PREDICATES[predicate]
            for obj in objects[:max_objects]:
                if isinstance(obj, str) and obj.strip():
                    yield Triple(subject, head_type, predicate, rel, obj.strip(), tail_type)


def key_factors_from_cmekg(tokenizer, subjects: Iterable[str] | None = None, pieces: str = "first",
                           graph: dict | None = None, vocab_size: int | None = None) -> KeyFactors:
    """KeyFactors for a Chinese tokenizer from CMeKG (all subjects, or the given ones)."""
    triples = list(cmekg_triples(graph, subjects))
    if not triples:
        raise ValueError("no CMeKG triples matched: check the subject names (Chinese, e.g. '支气管肺癌')")
    entities = sorted({t.head for t in triples} | {t.tail for t in triples})
    relations = sorted({t.relation for t in triples})
    return KeyFactors.from_terms(tokenizer, entities, relations, pieces=pieces, vocab_size=vocab_size)
