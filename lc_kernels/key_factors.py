"""Key factors Φ = V_ent ∪ E_rel: the domain token ids the layer-contrast loss targets (SPEC §5).

Three ways in:
* ``KeyFactors(entity_ids=[...], relation_ids=[...])`` — token ids directly;
* ``KeyFactors.from_terms(tokenizer, entities=[...], relations=[...], pieces="first")`` — terms,
  tokenised with and without a leading space (SPEC §6), with a coverage report;
* ``KeyFactors.from_triples(path, tokenizer)`` — a JSONL file of typed medical triples
  ``{"head", "head_type", "relation", "tail", "tail_type"}``.
"""
from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch

from .jsonl import read_jsonl

log = logging.getLogger(__name__)

# The six entity classes and the spellings accepted for each in a triples file.
ENTITY_TYPES = {
    "disease": ("disease", "disorder", "condition", "疾病"),
    "symptom_sign": ("symptom", "sign", "symptom/sign", "symptom_sign", "symptom or sign", "症状", "体征"),
    "body_part": ("body part", "body_part", "anatomy", "organ", "site", "部位", "身体部位"),
    "pathogen": ("pathogen", "microorganism", "virus", "bacterium", "bacteria", "病原体"),
    "chemical_drug": ("drug", "chemical", "chemical/drug", "chemical_drug", "medication", "medicine", "药物", "化学物质"),
    "instrument": ("instrument", "device", "medical device", "equipment", "器械", "医疗器械"),
}

# The six relation classes, each with the (lower-case) keywords that map free text onto it.
# The first class whose keyword occurs in the relation text wins, so the more specific come first.
RELATION_CLASSES = {
    "contraindicated_drug": ("contraindicat", "should not take", "avoid", "禁忌"),
    "treatment_drug": ("treated with", "treatment drug", "drug", "medication", "therapy with", "药物治疗", "药物"),
    "clinical_manifestation": ("manifest", "symptom", "sign", "presents with", "present with", "临床表现", "症状"),
    "site_of_onset": ("site", "location", "located", "occurs in", "affects", "body part", "发病部位", "部位"),
    "cause": ("cause", "caused by", "etiology", "aetiology", "risk factor", "病因", "导致"),
    "diagnosis_treatment": ("diagnos", "treat", "test", "examination", "surgery", "procedure", "检查", "治疗", "诊断"),
}


def _normalise_entity_type(text: str) -> str | None:
    t = text.strip().lower()
    for cls, names in ENTITY_TYPES.items():
        if t == cls or t in names:
            return cls
    return None


def relation_class(text: str) -> str | None:
    """Map a free-text relation onto one of the six relation classes, or None."""
    t = text.strip().lower().replace("_", " ")
    for cls, keywords in RELATION_CLASSES.items():
        if t == cls.replace("_", " ") or any(k in t for k in keywords):
            return cls
    return None


@dataclass(frozen=True)
class Triple:
    head: str
    head_type: str  # one of ENTITY_TYPES
    relation: str
    relation_class: str  # one of RELATION_CLASSES
    tail: str
    tail_type: str


def load_triples(path: str | Path) -> list[Triple]:
    """Read a JSONL file of typed triples; a bad line raises ValueError naming file and line."""
    triples = []
    for where, rec in read_jsonl(path):
        missing = [k for k in ("head", "head_type", "relation", "tail", "tail_type") if not rec.get(k)]
        if missing:
            raise ValueError(f"{where}: missing or empty field(s) {missing}")
        types = []
        for key in ("head_type", "tail_type"):
            cls = _normalise_entity_type(str(rec[key]))
            if cls is None:
                raise ValueError(f"{where}: {key}={rec[key]!r} is not one of the six entity classes "
                                 f"{list(ENTITY_TYPES)}")
            types.append(cls)
        rcls = relation_class(str(rec["relation"]))
        if rcls is None:
            raise ValueError(f"{where}: relation {rec['relation']!r} maps to none of the six relation "
                             f"classes {list(RELATION_CLASSES)}")
        triples.append(Triple(str(rec["head"]), types[0], str(rec["relation"]), rcls, str(rec["tail"]), types[1]))
    return triples


def _encode(tokenizer, text: str) -> list[int]:
    """Token ids of text without special tokens, for HF tokenizers and `tokenizers.Tokenizer`."""
    try:
        out = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:
        out = tokenizer.encode(text)
    return list(getattr(out, "ids", out))


def _vocab_size(tokenizer) -> int | None:
    for attr in ("get_vocab_size", "__len__"):
        fn = getattr(tokenizer, attr, None)
        if fn is not None:
            try:
                return int(fn())
            except TypeError:
                continue
    return None


def _ids(values: Iterable[int] | torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(list(values) if not isinstance(values, torch.Tensor) else values)
    if t.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise TypeError(f"{name} must be integer token ids; got dtype {t.dtype}")
    t = t.reshape(-1).long()
    if bool((t < 0).any()):
        raise ValueError(f"{name} holds a negative token id ({int(t.min())}); expected ids >= 0")
    return torch.unique(t)


class KeyFactors:
    """Token-id sets: entities V_ent and relations E_rel; Φ = V_ent ∪ E_rel.

    ``entity_ids`` / ``relation_ids`` are sorted unique int64 tensors (on CPU).
    """

    def __init__(self, entity_ids: Iterable[int] | torch.Tensor = (), relation_ids: Iterable[int] | torch.Tensor = ()):
        self.entity_ids = _ids(entity_ids, "entity_ids")
        self.relation_ids = _ids(relation_ids, "relation_ids")
        self.report: str | None = None
        self._mask_cache: dict = {}

    def __repr__(self) -> str:
        return f"KeyFactors({self.entity_ids.numel()} entity ids, {self.relation_ids.numel()} relation ids)"

    @property
    def num_ids(self) -> int:
        return int(torch.unique(torch.cat([self.entity_ids, self.relation_ids])).numel())

    def masks(self, vocab_size: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Membership masks (entity_mask, relation_mask), each bool [V] on `device`."""
        key = (int(vocab_size), str(device))
        if key not in self._mask_cache:
            for name, ids in (("entity_ids", self.entity_ids), ("relation_ids", self.relation_ids)):
                if ids.numel() and int(ids.max()) >= vocab_size:
                    raise ValueError(f"key_factors.{name} holds token id {int(ids.max())}, outside the "
                                     f"vocabulary of size V = {vocab_size}")
            masks = []
            for ids in (self.entity_ids, self.relation_ids):
                m = torch.zeros(vocab_size, dtype=torch.bool)
                m[ids] = True
                masks.append(m.to(device))
            self._mask_cache[key] = tuple(masks)
        return self._mask_cache[key]

    @classmethod
    def from_terms(cls, tokenizer, entities: Sequence[str] = (), relations: Sequence[str] = (),
                   pieces: str = "first", vocab_size: int | None = None) -> "KeyFactors":
        """Tokenise each term with and without a leading space; keep the first piece of each form
        (``pieces="first"``) or every piece (``"all"``). Sets ``.report`` and warns when Φ covers
        more than 1 % of the vocabulary (common pieces would make the gate fire everywhere).
        """
        if pieces not in ("first", "all"):
            raise ValueError(f"pieces={pieces!r} is not supported; expected 'first' or 'all'")

        def collect(terms: Sequence[str], name: str) -> list[int]:
            if isinstance(terms, str):
                raise TypeError(f"{name} must be a list of strings, not one string")
            ids: list[int] = []
            for term in terms:
                term = str(term).strip()
                if not term:
                    continue
                for form in (term, " " + term):
                    toks = _encode(tokenizer, form)
                    ids.extend(toks[:1] if pieces == "first" else toks)
            return ids

        kf = cls(collect(entities, "entities"), collect(relations, "relations"))
        V = vocab_size or _vocab_size(tokenizer)
        if V:
            share = kf.num_ids / V
            kf.report = (f"key factors: {kf.entity_ids.numel()} entity ids from {len(entities)} terms, "
                         f"{kf.relation_ids.numel()} relation ids from {len(relations)} terms; "
                         f"Φ covers {kf.num_ids} of {V} tokens ({100 * share:.2f} % of the vocabulary)")
            log.info(kf.report)
            if share > 0.01:
                warnings.warn(f"{kf.report}: above 1 %, the key-factor gate may fire on most positions "
                              f"(try pieces='first' or fewer, longer terms)", stacklevel=2)
        return kf

    @classmethod
    def from_triples(cls, path: str | Path, tokenizer, pieces: str = "first",
                     vocab_size: int | None = None) -> "KeyFactors":
        """Key factors from a JSONL of typed triples: heads and tails are entities, relations are
        the relation phrases (see :func:`load_triples`)."""
        triples = load_triples(path)
        entities = sorted({t.head for t in triples} | {t.tail for t in triples})
        relations = sorted({t.relation for t in triples})
        return cls.from_terms(tokenizer, entities, relations, pieces=pieces, vocab_size=vocab_size)
