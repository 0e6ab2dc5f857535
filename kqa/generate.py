"""Training questions generated from a KG itself, with images where entities have them.

For a domain KG without a question set, the KG is its own teacher: every entity's facts become
templated questions of zero (which entity is shown?), one and two hops, asked either about the
entity by name or about a picture of it (an augmented entity image from :mod:`kqa.augment`).
Templates come from the knowledge pack's manifest (``questions`` section) with generic ones
built from relation names as a fallback, so any KG with relation names, and optionally images,
can be used. Templates starting with ``!`` are held out of training (``split="test"`` uses
only those), so benchmarks measure phrasings the model never saw. A share of training questions
carries one typo (:func:`add_typo`): people misspell, and a model must not hinge on spelling.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable

import numpy as np

from kqa.graph import ENTITY, LITERAL, KGraph, load_graph, type_name
from kqa.link import AliasTable, alias_key, join_compounds, spoken
from kqa.recognise import lookalikes
from kqa.retrieve import default_hub_degree
from kqa.store import Store
from kqa.training import Example

GENERIC_SHOWN = ["this {type}", "the {type} in the picture", "the {type} shown here", "!the {type} in this photo"]
GENERIC_IDENTITY = ["which {type} is this", "what {type} is shown here", "name the {type} in the picture",
                    "!identify this {type}"]
GENERIC_ASK = ["what is the {rel} of {x}", "what {rel} does {x} have", "tell me the {rel} of {x}",
               "{x}: which {rel}", "!what's the {rel} of {x}"]
GENERIC_NOUN = ["the {rel} of {x}"]
PREPOSITIONS = frozenset({"about", "after", "as", "at", "by", "for", "from", "in", "into", "of", "on", "to",
                          "with"})
AUXILIARIES = {"is", "are", "was", "were", "does", "do", "did", "has", "have", "can", "will"}
TYPO_WORD = re.compile(r"\{[^}]*\}|[A-Za-z]{4,}")  # placeholders are matched to be skipped


def add_typo(template: str, rng: np.random.Generator) -> str:
    """The template with one slip of the keyboard (two letters swapped, one dropped, doubled
    or replaced) inside one word of four letters or more, placeholders left alone. People
    type "captial" and "bordres"; a model that only ever saw clean templates reads such a
    question as something else (one typo in each held-out text question of the countries
    benchmark cost such a model 14.5 points of Hits@1; trained with typos, 6.6)."""
    words = [m for m in TYPO_WORD.finditer(template) if not m.group().startswith("{")]
    if not words:
        return template
    match = words[int(rng.integers(len(words)))]
    word, i = match.group(), int(rng.integers(1, len(match.group()) - 1))
    kind = int(rng.integers(4))
    if kind == 0:
        word = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    elif kind == 1:
        word = word[:i] + word[i + 1:]
    elif kind == 2:
        word = word[:i] + word[i] + word[i:]
    else:
        others = string.ascii_lowercase.replace(word[i].lower(), "")
        word = word[:i] + others[int(rng.integers(len(others)))] + word[i + 1:]
    if word == match.group():  # two equal letters swapped: drop one instead
        word = word[:i] + word[i + 1:]
    return template[:match.start()] + word + template[match.end():]


def noun_phrases(questions: list[str]) -> list[str]:
    """Noun phrases for composing two-hop questions, derived from a relation's one-hop
    questions by plain grammar, so that every phrasing a pack gives for a relation also
    appears inside longer questions: "which countries border {x}" → "the countries that
    border {x}"; "what is the capital of {x}" / "name the neighbours of {x}" → "the capital
    of {x}" / "the neighbours of {x}". Questions that invert subject and verb ("what currency
    does {x} use") or ask how/where are left out: they have no plain noun form."""
    out = []
    for question in questions:
        words = question.split()
        if "{x}" not in question or len(words) < 3:
            continue
        first, second = words[0].lower(), words[1].lower()
        if first in {"what", "which"} and second in {"is", "are"} and words[2].lower() == "the":
            out.append(" ".join(words[2:]))  # what is the capital of {x}
        elif first in {"name", "list"} and second == "the":
            out.append(" ".join(words[1:]))  # name the neighbouring countries of {x}
        elif first in {"what", "which"} and second not in AUXILIARIES and "{x}" not in words[1] \
                and not _inverted(words[2:]):
            out.append(f"the {words[1]} that {' '.join(words[2:])}")  # which countries border {x}
    return list(dict.fromkeys(out))


# words that end a noun phrase's head and start what modifies it ("the capital OF {x}")
POSTMODIFIERS = {"of", "that", "which", "who", "whose", "where", "in", "on", "at", "from", "by", "with",
                 "for", "to", "next", "near", "along", "around", "across"}
IRREGULAR_PLURALS = {"people", "children", "men", "women", "data", "media", "criteria", "feet", "teeth", "mice"}
PLURAL_VERBS = {"is": "are", "was": "were", "does": "do", "has": "have"}


def plural_phrase(phrase: str) -> bool:
    """Does a noun phrase ("the countries next to {x}") name several things? Its head is the
    last word before what modifies it: a preposition or relative word, or a participle after
    a noun ("the countries bordering {x}", "the languages spoken in {x}"); a participle before
    the head is an adjective ("the neighbouring countries of {x}")."""
    words = [w.lower() for w in phrase.split()]
    if words and words[0] in {"the", "a", "an", "its", "their"}:
        words = words[1:]
    head = ""
    for word in words:
        if "{x}" in word or word in POSTMODIFIERS or (head and _participle(word)):
            break
        head = word
    return head in IRREGULAR_PLURALS or (len(head) > 3 and head.endswith("s")
                                         and not head.endswith(("ss", "us", "is", "'s")))


def _participle(word: str) -> bool:
    return len(word) > 4 and word.endswith(("ing", "ed", "en"))


def agree(template: str, plural: bool) -> str:
    """A question template whose ``{x}`` will be filled by a plural noun phrase, with the verb
    that has {x} as its subject made plural: "in what part of the world is {x}" → "... are
    {x}", "name the subregion {x} lies in" → "... {x} lie in", "its" → "their". A composed
    question ("is the countries next to X") would otherwise be ungrammatical in training and
    in benchmarks alike, unlike what people type. ``{x}'s`` is left: its noun is the subject."""
    if not plural:
        return template
    words = template.split()
    at = next((i for i, w in enumerate(words) if "{x}" in w), None)
    if at is None or words[at] != "{x}":  # "{x}'s", "{x}:" — the subject is something else
        return template
    if at > 0 and words[at - 1].lower() in PLURAL_VERBS:
        words[at - 1] = PLURAL_VERBS[words[at - 1].lower()]
    elif at + 1 < len(words) and (at == 0 or words[at - 1].lower() not in POSTMODIFIERS):
        words[at + 1] = _plural_verb(words[at + 1])  # "{x} lies", not "in {x} today"
    return " ".join("their" if w == "its" else w for w in words)


def _plural_verb(word: str) -> str:
    """The plural of a present-tense verb after its subject ("lies" → "lie", "applies" →
    "apply"); other words unchanged."""
    if word in PLURAL_VERBS:
        return PLURAL_VERBS[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "'s")):
        return word[:-1]
    return word


def _inverted(words: list[str]) -> bool:
    """Does the entity follow an auxiliary ("... is {x} in", "does {x} use")? Then the
    question inverts subject and verb, and "the N that ..." would not be English."""
    for before, word in zip([""] + words, words):
        if "{x}" in word:
            return before.lower() in AUXILIARIES or word.index("{x}") > 0
    return True


PLURAL_NOUNS = {"person": "people", "child": "children", "man": "men", "woman": "women"}


def plural_noun(noun: str) -> str:
    """"moon" → "moons", "city" → "cities", "person" → "people" (the last word of a phrase)."""
    *rest, last = noun.split() or [""]
    if last in PLURAL_NOUNS:
        last = PLURAL_NOUNS[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        last += "es"
    elif len(last) > 1 and last.endswith("y") and last[-2] not in "aeiou":
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join([*rest, last])


def participle_base(word: str) -> str | None:
    """The verb whose past participle ``word`` is ("discovered" → "discover", "stopped" →
    "stop", "written" → "write", "founded" → "found", "found" → "find"), by lemminflect's
    English tables, the reading English uses most where there are several; None for a word
    that is no past participle, or whose verb is not an English word.

    Before, only regular "-ed" participles were read, so a KG relation "written by" was never
    asked "who wrote X", and the works probe answered "who wrote Hamlet" with the year it was
    published (the words "who" and "wrote" had met no training question)."""
    from lemminflect import getInflection, getLemma

    from kqa.link import word_zipf

    verbs = [lemma for lemma in getLemma(word, upos="VERB") if word in getInflection(lemma, tag="VBN")]
    best = max(verbs, key=word_zipf, default=None)
    return best if best is not None and word_zipf(best) > 0 else None


def past_tense(base: str) -> str:
    """The simple past of a verb ("discover" → "discovered", "write" → "wrote"): the active
    voice of a "V-ed by" relation ("who wrote X") needs it, and for irregular verbs it is not
    the participle."""
    from lemminflect import getInflection

    forms = getInflection(base, tag="VBD")
    return forms[0] if forms else base + ("d" if base.endswith("e") else "ed")


def _place_participle(word: str) -> bool:
    """Is ``word`` a participle that, with "in" or "at" after it, says where ("born in",
    "located in", "held at", "sold in")? Such relations are asked with "where": "where was X
    born"."""
    return (len(word) > 4 and word.endswith(("ed", "en"))) or participle_base(word) is not None


def agent_noun(base: str) -> str | None:
    """The noun for who does what a verb says ("discover" → "discoverer", "direct" →
    "director", "found" → "founder", "create" → "creator"), by which form English uses most;
    None where no form is common (wordfreq Zipf < 2.5: "affecter", "coacher"). People ask
    "who was the founder of X" and "where was the discoverer of X born" at least as often as
    "who founded X", and a model trained on no such noun read the second as one hop (the
    discoverer, at 0.93-1.0)."""
    from kqa.link import word_zipf

    stem = base[:-1] if base.endswith("e") else base
    options = [base + "r" if base.endswith("e") else base + "er", stem + "or", base + base[-1] + "er"]
    best = max(options, key=word_zipf)
    return best if word_zipf(best) >= 2.5 else None


@dataclass(frozen=True)
class Phrasing:
    """Generic wordings of a relation read one way, for a KG without templates: questions
    (``{x}`` the entity asked about, ``{type}`` the answers' type, ``{types}`` its plural) and
    noun phrases for the answers, which two-hop questions are composed with (``{type}``: the
    type of those answers)."""
    ask: list[str]
    noun: list[str]


def generic_phrasing(label: str, inverse: bool = False) -> Phrasing:
    """Wordings of a relation named ``label``, read from subject to object or, ``inverse``,
    back, by how the name reads: a phrase ending in a preposition ("discovered by": "what is
    {x} discovered by", back "what is discovered by {x}"), "has" and a noun ("has genre":
    "what genre does {x} have"), one word that may be a verb or a plural noun ("orbits":
    "what does {x} orbit", back "what orbits {x}", and the noun's wordings too), or a noun
    ("capital": "what is the capital of {x}", back "which {type} has {x} as its capital").
    A "V-ed by" relation is also asked by its doer's noun ("who is the founder of {x}", and
    "the founder of {x}" inside two-hop questions: :func:`agent_noun`), and a participle with
    "in" or "at" with "where" ("where was {x} born").
    Before, a relation named "orbits" was asked about as "what is the orbits of {x}" and
    backwards as "what is orbits (inverse) {x}": wordings nobody types, so a model trained on
    them read people's questions about a new KG poorly."""
    words = label.split()
    if words and words[-1] in PREPOSITIONS:
        # "discovered by" is also asked in the active voice: "who discovered X", "what did X discover"
        base = participle_base(words[0]) if len(words) == 2 and words[1] == "by" else None
        if inverse:
            active = [f"what did {{x}} {base}", f"which {{types}} did {{x}} {base}"] if base else []
            return Phrasing([f"what is {label} {{x}}", f"which {{type}} is {label} {{x}}",
                             f"which {{types}} are {label} {{x}}", *active, f"!name the {{type}} {label} {{x}}"],
                            [f"the {{type}} {label} {{x}}"])
        past = past_tense(base) if base else ""  # "written by": "who wrote X"
        active = [f"who {past} {{x}}", f"which {{type}} {past} {{x}}"] if base else []
        agent = agent_noun(base) if base else None
        where = [f"where is {{x}} {words[0]}", f"where was {{x}} {words[0]}"] \
            if len(words) == 2 and words[1] in ("in", "at") and _place_participle(words[0]) else []
        agent_ask = [f"who is the {agent} of {{x}}", f"which {{type}} is the {agent} of {{x}}",
                     f"!who was the {agent} of {{x}}"] if agent else []
        return Phrasing([f"what is {{x}} {label}", f"which {{type}} is {{x}} {label}", f"{{x}} is {label} what",
                         *active, *agent_ask, *where, f"!what {{type}} is {{x}} {label}"],
                        [f"the {{type}} {{x}} is {label}", f"the {{type}} that {{x}} is {label}",
                         *([f"the {{type}} that {past} {{x}}"] if base else []),
                         *([f"the {agent} of {{x}}", f"{{x}}'s {agent}"] if agent else [])])
    if len(words) > 1 and words[0] in ("has", "have"):
        rest = " ".join(words[1:])
        if inverse:
            return Phrasing([f"which {{type}} has {rest} {{x}}", f"what has {rest} {{x}}",
                             f"!name the {{type}} with {rest} {{x}}"], [f"the {{type}} with {rest} {{x}}"])
        return Phrasing([f"what {rest} does {{x}} have", f"which {rest} does {{x}} have",
                         f"!what is the {rest} of {{x}}"], [f"the {rest} of {{x}}"])
    if inverse:
        noun = Phrasing([f"which {{type}} has {{x}} as its {label}", f"what has the {label} {{x}}",
                         f"which {{types}} have {{x}} as their {label}", f"!which {{type}} has the {label} {{x}}"],
                        [f"the {{type}} whose {label} is {{x}}"])
    else:
        noun = Phrasing([g.replace("{rel}", label) for g in GENERIC_ASK],
                        [g.replace("{rel}", label) for g in GENERIC_NOUN])
    base = _plural_verb(label)
    if len(words) != 1 or base == label:
        return noun
    if inverse:
        verb = Phrasing([f"what {label} {{x}}", f"which {{type}} {label} {{x}}", f"which {{types}} {base} {{x}}",
                         f"!name the {{type}} that {label} {{x}}"], [f"the {{type}} that {label} {{x}}"])
    else:
        verb = Phrasing([f"what does {{x}} {base}", f"which {{type}} does {{x}} {base}",
                         f"!what {{type}} does {{x}} {base}"], [f"the {{type}} {{x}} {label}"])
    return Phrasing(verb.ask + noun.ask, verb.noun + noun.noun)


YEAR = re.compile(r"^\d{3,4}(-\d\d(-\d\d)?)?$")


def when_wordings(label: str, years: bool) -> list[str]:
    """"When" questions for a relation to dates named by a participle and "in", "on" or "at"
    ("published in" → "when was {x} published"; "in which year was {x} published" as well when
    every value is a year or a date, ``years``); none for other names. People ask for a date
    with "when", and without these no training question did (the works probe's six "when"
    questions, three seeds: 17 of 18 right without them, 18 of 18 with: the encoder already
    reads "published" near the relation's name, so the gain is small; docs/results.md)."""
    words = label.split()
    if len(words) != 2 or words[1] not in ("in", "on", "at") or not _place_participle(words[0]):
        return []
    verb = words[0]
    out = [f"when was {{x}} {verb}", f"!when is {{x}} {verb}"]
    if years:
        out += [f"in what year was {{x}} {verb}", f"!in which year was {{x}} {verb}"]
    return out


@dataclass
class GenerateConfig:
    seed: int = 0
    split: str = "train"  # "train": templates without "!"; "test": only the "!" ones
    per_path: int = 2  # questions per (entity, relation path)
    image_share: float = 0.5  # for entities with images: share of questions asked about a picture
    views: int = 4  # distinct distorted pictures per entity image
    mix: str = "train"  # distortion mix (kqa.augment.MIXES)
    negatives: float = 0.03  # share of picture questions whose picture shows no entity
    identity_per_entity: int = 2
    two_hop: bool = True
    inverse: bool = True
    text: bool = True  # also questions naming the entity
    max_questions: int = 30_000
    typos: float = 0.1  # training split only: share of questions given one typo (:func:`add_typo`)


@dataclass
class Templates:
    shown: dict[str, list[str]] = field(default_factory=dict)
    identity: dict[str, list[str]] = field(default_factory=dict)
    ask: dict[str, list[str]] = field(default_factory=dict)
    noun: dict[str, list[str]] = field(default_factory=dict)
    inverse: dict[str, list[str]] = field(default_factory=dict)
    two_hop: list[tuple[str, str]] = field(default_factory=list)


def read_templates(meta: dict[str, Any]) -> Templates:
    q = meta.get("questions", {}) or {}
    rel = q.get("relations", {})
    return Templates(
        shown=q.get("shown", {}), identity=q.get("identity", {}),
        ask={k: v.get("ask", []) for k, v in rel.items()},
        noun={k: v.get("noun", []) for k, v in rel.items()},
        inverse={k: v.get("ask", []) for k, v in q.get("inverse", {}).items()},
        two_hop=[tuple(p) for p in q.get("two_hop", [])])  # type: ignore[misc]


def pick(templates: list[str], split: str) -> list[str]:
    """Training templates, or the held-out ("!") ones for ``split="test"``."""
    held = [t[1:] for t in templates if t.startswith("!")]
    kept = [t for t in templates if not t.startswith("!")]
    if split == "test":
        return held or kept
    return kept or held


class Generator:
    def __init__(self, graph: KGraph, templates: Templates, config: GenerateConfig) -> None:
        self.graph, self.t, self.cfg = graph, templates, config
        self.rng = np.random.default_rng(config.seed + (7919 if config.split == "test" else 0))
        # typos draw from their own stream: the questions are the same with or without them
        self.typo_rng = np.random.default_rng(config.seed + 104_729)
        count = graph.num_relations
        self.objects: dict[tuple[int, int], list[int]] = {}
        for s, r, o in zip(graph.src.tolist(), graph.rel.tolist(), graph.dst.tolist()):
            self.objects.setdefault((s, r), []).append(o)
            self.objects.setdefault((o, r + count), []).append(s)
        self.slot_of = {k: i for i, k in enumerate(graph.relation_keys)}
        self.views: dict[int, list[Any]] = {}
        # entities whose pictures look the same: a question about such a picture is about any
        self.same = lookalikes(graph) if graph.images else {}
        # entities that share a name or alias: a question that names one names them all
        self.named = AliasTable(graph).table

    # -- phrasing --------------------------------------------------------------------------
    def _choice(self, options: list[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def _typed(self, template: str) -> str:
        """The template as questions are read (:func:`kqa.link.join_compounds`: "sub-region"
        → "subregion", as ``kqa ask`` reads it), given a typo for a share of training questions."""
        template = join_compounds(template, self.graph.schema_words)
        if self.cfg.split != "train" or not self.cfg.typos or self.typo_rng.random() >= self.cfg.typos:
            return template
        return add_typo(template, self.typo_rng)

    def _type(self, node: int) -> str:
        return type_name(self.graph.node_types[node])  # "which year", not "which literal:gYear"

    def shown_phrase(self, node: int) -> str:
        kind = self._type(node)
        return self._choice(pick(self.t.shown.get(kind, GENERIC_SHOWN), self.cfg.split)).format(type=kind)

    def generic(self, slot: int) -> Phrasing:
        """The generic wordings of a slot (:func:`generic_phrasing`); a KG that names a
        relation's inverse ("capital of") has it read forwards by that name."""
        count = self.graph.num_relations
        if slot < count:
            phrasing = generic_phrasing(self.graph.relation_names[slot])
            if slot in self.literal_relations:  # "published in" a year: asked "when", not "where"
                kept = [t for t in phrasing.ask if not t.lstrip("!").startswith("where ")]
                phrasing = Phrasing(kept + when_wordings(self.graph.relation_names[slot], slot in self.year_relations),
                                    phrasing.noun)
            return phrasing
        inverse_name = self.graph.relation_inverse_names[slot - count]
        if inverse_name:
            return generic_phrasing(inverse_name)
        return generic_phrasing(self.graph.relation_names[slot - count], inverse=True)

    def ask_template(self, slot: int) -> str:
        count = self.graph.num_relations
        key = self.graph.relation_keys[slot % count]
        templates = self.t.ask if slot < count else self.t.inverse
        options = templates.get(key) or self.generic(slot).ask
        return self._choice(pick(options, self.cfg.split))

    def noun_template(self, slot: int) -> str:
        key = self.graph.relation_keys[slot % self.graph.num_relations]
        options = (self.t.noun.get(key) if slot < self.graph.num_relations else None) or self.generic(slot).noun
        options = pick(options, self.cfg.split)
        if self.cfg.split != "test" and slot < self.graph.num_relations:
            # training also composes with the noun forms of the relation's own questions (not
            # with any that a pack holds out for testing: those stay unseen)
            held = {t[1:] for t in self.t.noun.get(key, []) if t.startswith("!")}
            derived = [n for n in noun_phrases(pick(self.t.ask.get(key, []), "train")) if n not in held]
            options = list(dict.fromkeys(options + derived))
        return self._choice(options)

    # -- pictures --------------------------------------------------------------------------
    def picture(self, node: int) -> Any:
        """One of the entity's distorted pictures (a fixed pool per entity, shared by its
        questions so each picture is encoded once)."""
        if node not in self.views:
            self.make_pictures([node])
        pool = self.views[node]
        return pool[int(self.rng.integers(len(pool)))]

    def make_pictures(self, nodes: list[int]) -> None:
        """The pools of distorted pictures of ``nodes``, made on every core. Each entity's
        pool comes from a generator seeded by its key, split and seed, so it is the same
        whichever process makes it and whatever else is made."""
        from kqa.augment import MIXES, backgrounds, distort, in_processes
        from kqa.images import open_image

        mix = MIXES[self.cfg.mix] if self.cfg.mix in MIXES else MIXES[self.cfg.mix + "_mix"]
        pool = backgrounds(mix.backgrounds)

        def views(k: int) -> list[Any]:
            node = nodes[k]
            source = open_image(self.graph.images[node][0])
            seed = int(hashlib.sha1(f"{self.graph.node_keys[node]}|{self.cfg.split}|{self.cfg.seed}".encode())
                       .hexdigest()[:8], 16)
            rng = np.random.default_rng(seed)
            return [distort(source, rng, mix, pool) for _ in range(self.cfg.views)]

        for node, made in zip(nodes, in_processes(views, len(nodes))):
            self.views[node] = made  # type: ignore[assignment]

    @cached_property
    def scenes(self) -> list[Any]:
        """The background photos of this split, read once (pictures of no entity pick one)."""
        from kqa.augment import backgrounds

        return backgrounds("train" if self.cfg.split == "train" else "test")

    def blank_picture(self) -> Any:
        """A picture of no entity: a background photo, a plain colour or noise."""
        from kqa.augment import no_entity_picture

        return no_entity_picture(self.rng, self.scenes)

    # -- questions -------------------------------------------------------------------------
    def paths(self, node: int) -> Iterable[tuple[str, list[int], str, str]]:
        """(kind, answers, question template with {x}, how {x} is filled) for one entity."""
        count = self.graph.num_relations
        for slot in range(2 * count):
            answers = self.objects.get((node, slot))
            if not answers:
                continue
            if slot >= count and not (self.cfg.inverse and (self._has_inverse_template(slot) or not self.t.ask)):
                continue  # a pack with templates says which inverse questions make sense
            yield self._kind(slot), answers, self._of_type(self.ask_template(slot), answers), ""
        if not self.cfg.two_hop:
            return
        if not self.t.ask and not self.t.two_hop:
            yield from self._generic_two_hop(node)
            return
        for first, second in self.t.two_hop:
            s1, s2 = self.slot_of.get(first), self.slot_of.get(second)
            if s1 is None or s2 is None:
                continue
            answers = self.answers(node, f"{first}>{second}")
            if answers:
                noun = self.noun_template(s1)
                template = agree(self.ask_template(s2), plural_phrase(noun)).replace("{x}", noun)
                yield f"{first}>{second}", answers, template, ""

    def _kind(self, slot: int) -> str:
        count = self.graph.num_relations
        return self.graph.relation_keys[slot] if slot < count else "~" + self.graph.relation_keys[slot - count]

    def _of_type(self, template: str, nodes: list[int]) -> str:
        """``{type}`` filled with the type most of ``nodes`` have (``{types}``: its plural)."""
        if "{type" not in template:
            return template
        kinds = [self._type(n) for n in nodes]
        kind = max(sorted(set(kinds)), key=kinds.count)
        return template.replace("{types}", plural_noun(kind)).replace("{type}", kind)

    def _generic_two_hop(self, node: int) -> Iterable[tuple[str, list[int], str, str]]:
        """Two-hop questions for a KG without templates: every pair of relations that leads
        on from ``node`` (back along the first one too: "the books by the author of X", X
        itself left out, as answering leaves it out), the first as a noun phrase in the
        second's question ("what is the person that Europa is discovered by born in"). Without them a
        model trained on such a KG answered every two-hop question with its first hop, sure
        of it. At most as many pairs as the entity has one-hop questions, at random: a KG
        with many relations has many pairs. Middle entities the answering propagation does
        not walk on through (hubs, :func:`kqa.retrieve.default_hub_degree`) are left out."""
        count = self.graph.num_relations
        pairs = []
        for s1 in range(2 * count):
            middle = [m for m in self.objects.get((node, s1), []) if self.walkable[m]]
            if not middle:
                continue
            for s2 in range(2 * count):
                answers = sorted({a for m in middle for a in self.objects.get((m, s2), []) if a != node})
                if answers:
                    pairs.append((s1, s2, middle, answers))
        budget = max(2, sum(1 for s in range(2 * count) if self.objects.get((node, s))))
        if len(pairs) > budget:
            pairs = [pairs[i] for i in sorted(self.rng.choice(len(pairs), budget, replace=False))]
        for s1, s2, middle, answers in pairs:
            noun = self._of_type(self.noun_template(s1), middle)
            template = agree(self._of_type(self.ask_template(s2), answers), plural_phrase(noun))
            yield f"{self._kind(s1)}>{self._kind(s2)}", answers, template.replace("{x}", noun), ""

    @cached_property
    def literal_relations(self) -> set[int]:
        """The relations whose objects are all literal values (years, numbers)."""
        rel = self.graph.rel
        to_entity = self.graph.node_kind[self.graph.dst] != LITERAL
        return {int(r) for r in np.setdiff1d(rel, rel[to_entity])}  # one pass, not one per relation

    @cached_property
    def year_relations(self) -> set[int]:
        """The literal-valued relations whose values all read as years or dates ("1815",
        "1815-03-01"): these are also asked "in which year"."""
        if not self.literal_relations:
            return set()
        names, kind = self.graph.node_names, self.graph.node_kind
        dated = np.array([kind[n] == LITERAL and bool(YEAR.match(names[n])) for n in range(len(names))], dtype=bool)
        undated = np.unique(self.graph.rel[~dated[self.graph.dst]])  # one pass, as literal_relations
        return self.literal_relations - {int(r) for r in undated}

    @cached_property
    def walkable(self) -> np.ndarray:
        """Per node: whether answering's propagation walks on through it (not a hub)."""
        degree = self.graph.degree()
        return degree <= default_hub_degree(degree)

    def answers(self, node: int, kind: str) -> list[int]:
        """The answers to a question of ``kind`` (``rel``, ``~rel`` or ``first>second``)."""
        count = self.graph.num_relations

        def slot(name: str) -> int | None:
            inverse = name.startswith("~")
            found = self.slot_of.get(name.lstrip("~"))
            return None if found is None else found + (count if inverse else 0)

        first, _, second = kind.partition(">")
        s1 = slot(first)
        if s1 is None:
            return []
        if not second:
            return sorted(set(self.objects.get((node, s1), [])))
        s2 = slot(second)
        if s2 is None:
            return []
        middle = self.objects.get((node, s1), [])
        return sorted({a for m in middle for a in self.objects.get((m, s2), []) if a != node})

    def _has_inverse_template(self, slot: int) -> bool:
        return self.graph.relation_keys[slot - self.graph.num_relations] in self.t.inverse

    def examples(self) -> list[Example]:
        out: list[Example] = []
        graph, cfg = self.graph, self.cfg
        entities = [n for n in range(graph.num_nodes) if graph.node_kind[n] == ENTITY]
        self.make_pictures([n for n in entities if n in graph.images and n not in self.views])
        for node in entities:
            has_image = node in graph.images
            if has_image:
                kind = self._type(node)
                options = pick(self.t.identity.get(kind, GENERIC_IDENTITY), cfg.split)
                for _ in range(cfg.identity_per_entity):
                    text = self._typed(self._choice(options)).format(type=kind)
                    out.append(Example(text, list(self.same.get(node, [node])), [],
                                       image=self.picture(node), image_entity=node, group="identity"))
            for kind_name, answers, template, _ in self.paths(node):
                for _ in range(cfg.per_path):
                    shown = has_image and (not cfg.text or self.rng.random() < cfg.image_share)
                    out.append(self._ask(node, kind_name, answers, template, shown))
        negatives = int(cfg.negatives * sum(1 for e in out if e.image is not None))
        for _ in range(negatives):
            template = out[int(self.rng.integers(len(out)))]
            out.append(Example(template.text if template.image is not None else self.shown_phrase(entities[0]),
                               [], [], image=self.blank_picture(), image_entity=None, group="no entity"))
        if len(out) > cfg.max_questions:
            keep = self.rng.choice(len(out), cfg.max_questions, replace=False)
            out = [out[i] for i in sorted(keep)]
        return out

    def _ask(self, node: int, kind: str, answers: list[int], template: str, shown: bool) -> Example:
        template = self._typed(template)
        if shown:
            text = template.replace("{x}", self.shown_phrase(node))
            for other in self.same.get(node, [node])[1:]:  # a picture that several entities share
                answers = answers + self.answers(other, kind)
            return Example(text, sorted(set(answers)), [], image=self.picture(node),
                           image_entity=node, group=f"image:{kind}")
        name = self._name(node)
        twins = [n for n in self.named.get(alias_key(name), []) if n != node]
        for other in twins:
            answers = answers + self.answers(other, kind)
        before, _, after = template.partition("{x}")
        start = len(before)
        topic = [(n, 1.0 / (1 + len(twins))) for n in [node, *twins]]
        return Example(before + name + after, sorted(set(answers)), topic,
                       mention_spans=[(start, start + len(name))], group=f"text:{kind}")

    def _name(self, node: int) -> str:
        """How a question names ``node``: mostly its name, sometimes an alias, written as people
        write them (:func:`kqa.link.spoken`)."""
        aliases = self.graph.aliases[node]
        if aliases and self.rng.random() < 0.15:
            return spoken(aliases[int(self.rng.integers(len(aliases)))])
        return spoken(self.graph.node_names[node])


def generated_examples(kg_name: str, config: GenerateConfig | None = None) -> list[Example]:
    """Questions (as training examples) generated from a stored KG."""
    config = config or GenerateConfig()
    graph = load_graph(kg_name)
    templates = read_templates(Store().meta(kg_name))
    return Generator(graph, templates, config).examples()
