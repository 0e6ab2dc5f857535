"""The image recogniser: look-alike grouping, fine-tuning on a KG's entity images, and a
model that uses it end to end (saved, reloaded, answering about a photo)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import kqa
from kqa.augment import TEST_MIX, distort
from kqa.graph import load_graph

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "ui"))
import flagskg  # noqa: E402

pytestmark = pytest.mark.slow
FAST = {"views_per_entity": 24, "epochs": 6, "size": 96, "val_views": 4}


@pytest.fixture
def lands(tmp_path: Path) -> Path:
    """flagskg's four lands, plus 'Land E' flying Land A's flag (a byte-different copy)."""
    source = flagskg.write(tmp_path / "flags")
    data = json.loads(source.read_text(encoding="utf-8"))
    Image.open(tmp_path / "flags" / "A.png").save(tmp_path / "flags" / "E.png", compress_level=1)
    data["nodes"].append({"id": "E", "name": "Land E", "type": "country", "image": "E.png"})
    data["nodes"].append({"id": "capE", "name": "City E", "type": "city"})
    data["edges"].append({"source": "E", "relation": "capital", "target": "capE"})
    source.write_text(json.dumps(data), encoding="utf-8")
    kqa.load_kg(source, "flags")
    return tmp_path / "flags"


def _named(graph, name: str) -> int:  # type: ignore[no-untyped-def]
    return graph.node_names.index(name)


def test_lookalikes_group_identical_pictures_only(lands: Path) -> None:
    from kqa.recognise import lookalikes

    graph = load_graph("flags")
    groups = lookalikes(graph)
    a, e, b = (_named(graph, f"Land {k}") for k in "AEB")
    assert sorted(groups[a]) == sorted(groups[e]) == sorted([a, e])
    assert groups[a][0] == a and groups[e][0] == e  # itself first
    assert groups[b] == [b]
    assert _named(graph, "City A") not in groups  # no image, no group


def test_lookalike_pairs_are_those_a_comparison_of_every_pair_finds() -> None:
    """Candidates come from the cells' mean colours first (a bound, so nothing is missed):
    the pairs are exactly those within the line, compared in full, among pictures that are
    copies with resampling noise, copies a little too far off, and pictures alike in their
    cells' means but not pixel by pixel."""
    from kqa.recognise import LOOKALIKE_RMSE, lookalike_pairs

    rng = np.random.default_rng(0)
    base = rng.uniform(0, 255, (40, 32 * 32 * 3)).astype(np.float32)
    near = base[:10] + rng.normal(0, 1.0, (10, base.shape[1])).astype(np.float32)  # within the line
    far = base[10:15] + rng.normal(0, 3.0, (5, base.shape[1])).astype(np.float32)  # just outside
    # the pixels of base[15:20] upside down within each 8 × 8 cell: the same cell means,
    # different pictures (candidates that the full comparison must reject)
    cells = base[15:20].reshape(5, 4, 8, 4, 8, 3)[:, :, ::-1].reshape(5, -1)
    thumbs = np.concatenate([base, near, far, cells]).astype(np.float32)
    line = LOOKALIKE_RMSE ** 2 * thumbs.shape[1]
    squared = ((thumbs[:, None] - thumbs[None]) ** 2).sum(-1)
    every = {(i, j) for i in range(len(thumbs)) for j in range(i + 1, len(thumbs)) if squared[i, j] < line}
    found = lookalike_pairs(thumbs)
    assert set(found) == every and len(found) == len(set(found))
    assert {(i, 40 + i) for i in range(10)} <= every  # the noisy copies are look-alikes ...
    assert not any(j >= 50 for _, j in every)  # ... those a little too far off, or alike in cells only, are not


def test_generated_questions_about_a_shared_picture_accept_every_owner(lands: Path) -> None:
    from kqa.generate import GenerateConfig, generated_examples

    graph = load_graph("flags")
    a, e = _named(graph, "Land A"), _named(graph, "Land E")
    examples = generated_examples("flags", GenerateConfig(seed=0, image_share=1.0, negatives=0.0, views=1))
    identity = [x for x in examples if x.group == "identity" and x.image_entity in (a, e)]
    assert identity and all(sorted(x.answers) == sorted([a, e]) for x in identity)
    capitals = [x for x in examples if x.group == "image:capital" and x.image_entity == a]
    assert capitals and all({graph.node_names[n] for n in x.answers} == {"City A", "City E"} for x in capitals)


def test_recogniser_learns_the_entities_of_a_kg(lands: Path) -> None:
    from kqa.encode import get_encoder
    from kqa.recognise import RecogniseConfig, train_recogniser

    graph = load_graph("flags")
    trained = train_recogniser(graph, get_encoder(None, "image"),
                               RecogniseConfig(**FAST, negatives=0.25, val_negatives=40))
    assert trained is not None
    recogniser, nodes, report = trained
    assert sorted(nodes) == sorted(graph.images) and report.views == 24 * len(nodes)
    assert len(report.history) == 6 and report.history[-1]["train_accuracy"] > 0.8
    assert report.val_accuracy >= 0.6  # held-out photos (other seed, scenes and mix); chance is 0.3
    # held-out pictures of no entity (scenes, plain colours, noise training never drew) are
    # mostly "none of these", held-out flag photos rarely: the line between them was learned
    # (measured here: 0.75 and 0.0)
    last = report.history[-1]
    rates = {k: last[k] for k in last if "null" in k}
    assert last["val_null_on_nothing"] >= 0.6 and last["val_null_on_entities"] <= 0.2, rates
    assert report.null_logit is not None
    rng = np.random.default_rng(3)
    photos = [distort(Image.open(lands / f"{k}.png"), rng, TEST_MIX.only("rotate")) for k in "BCD"]
    best = recogniser.logits(torch.from_numpy(recogniser.encode_batch(photos))).argmax(-1).tolist()
    assert [graph.node_names[nodes[i]] for i in best] == ["Land B", "Land C", "Land D"]


def test_encoder_without_a_tower_gets_no_recogniser(lands: Path, tmp_path: Path) -> None:
    from kqa.encode import get_encoder
    from kqa.recognise import train_recogniser
    from tiny_models import tiny_clip

    clip = get_encoder("hf-clip:" + str(tiny_clip(tmp_path / "clip")), "image")
    assert clip.tower(64) is None
    assert train_recogniser(load_graph("flags"), clip) is None


def test_model_with_a_recogniser_round_trips_and_answers_about_a_photo(lands: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from kqa.answer import clear_answerers, load_answerer
    from safetensors.torch import load_file

    with flagskg.one_thread(torch):
        kqa.build_index("flags", image_views=1)
        report = kqa.train("flags", generated=True, epochs=6, recognise=FAST,
                           generate={"views": 3, "per_path": 4})
    folder = Path(report.model_dir)
    meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert meta["model"]["recognise"] and meta["model"]["recognise_size"] == 96
    assert len(meta["recogniser"]["entities"]) == 5 and meta["metrics"]["recognition_val_accuracy"] > 0.5
    assert isinstance(meta["recogniser"]["null_logit"], float)  # the answer model started from it
    assert any(k.startswith("recogniser.tower.") for k in load_file(str(folder / "model.safetensors")))
    clear_answerers()
    answerer = load_answerer("flags", folder)
    assert answerer.model.recogniser is not None
    photo = distort(Image.open(lands / "C.png"), np.random.default_rng(1), TEST_MIX.only("perspective"))
    found = answerer.image_candidates(photo, top_k=2)
    assert found[0].name == "Land C" and found[0].source == "image"
    result = answerer.ask("which country is this", image=photo)
    assert result.image_topic[0]["name"] == "Land C"
    linked = kqa.link_entities("flags", "which country is this", image=photo)
    assert linked.image_candidates[0].name == "Land C"  # linking uses the model's recogniser
    shared = distort(Image.open(lands / "E.png"), np.random.default_rng(2), TEST_MIX.only("perspective"))
    assert answerer.image_candidates(shared, top_k=2)[0].name == "Land A"  # the flag Land E flies too
    assert answerer.ask("which country is this", image=shared).image_topic[0]["name"] == "Land A"
    _an_answer_of_another_type_than_asked_is_not_confident(answerer, monkeypatch)
    _an_answer_put_first_by_its_type_says_what_the_wording_read_as(answerer, monkeypatch)
    _the_entity_a_question_in_words_names_is_no_confident_answer(answerer, photo, monkeypatch)
    _a_picture_of_nothing_gets_a_low_confidence_that_says_so(answerer, photo)
    _a_picture_of_nothing_leaves_the_topic_to_the_words(answerer)

    # another answer model (another fusion) reuses the trained recogniser as it is
    with flagskg.one_thread(torch):
        again = Path(kqa.train("flags", generated=True, epochs=1, fusion="concat", out=folder.parent / "again",
                               recogniser_from=folder, generate={"views": 1, "per_path": 1}).model_dir)
    first, second = load_file(str(folder / "model.safetensors")), load_file(str(again / "model.safetensors"))
    reused = [k for k in first if k.startswith("recogniser.")]
    assert reused and all(torch.equal(first[k], second[k]) for k in reused)
    assert json.loads((again / "config.json").read_text(encoding="utf-8"))["recogniser"]["from"] == str(folder)
    from kqa.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no trained model"):
        kqa.train("flags", generated=True, epochs=1, recogniser_from=folder.parent / "nothing-here")


def test_tower_frozen_layers_then_trainable_ones_equal_the_whole_network() -> None:
    """Training runs the frozen layers once per photo and keeps their output: that split must
    compute exactly what the tower does in one go, and leave only the later layers trainable."""
    from kqa.encode import get_encoder

    tower = get_encoder("efficientnet-lite0", "image").tower(64)
    tower.eval()
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    frozen = tower.frozen(images)
    assert not frozen.requires_grad
    with torch.no_grad():
        whole = tower.net.extract_features(tower.prepare(images)).mean(dim=(2, 3))  # the original
        split = tower.trainable(frozen)
    assert torch.allclose(whole, split, atol=2e-2, rtol=1e-2)
    assert frozen.numel() * frozen.element_size() < images.numel() * 4  # smaller than float pixels
    # what trains: the later blocks' pointwise convolutions, norms and the head, not their
    # depthwise filters (whose weight gradients cost a quarter of a CPU training step)
    trainable = {name for name, p in tower.named_parameters() if p.requires_grad}
    depthwise = [name for name, m in tower.named_modules()
                 if isinstance(m, torch.nn.Conv2d) and m.groups > 1 and name.startswith("net._blocks.")]
    assert depthwise and not any(f"{name}.weight" in trainable for name in depthwise)
    assert any(name.startswith("net._blocks.") for name in trainable) and "net._conv_head.weight" in trainable


def test_image_networks_take_a_few_images_at_a_time_on_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU a big batch of convolutional activations overflows the caches and runs 2–3×
    slower per image (kqa.device.image_batch): the recogniser's network and the image encoder
    must split what they are given, and the split may change a vector only in its last digits."""
    from kqa.device import image_batch
    from kqa.encode import get_encoder
    from kqa.recognise import Recogniser

    cpu = torch.device("cpu")
    step = image_batch(cpu)
    assert image_batch(torch.device("cuda")) > step
    encoder = get_encoder("efficientnet-lite0", "image")
    recogniser = Recogniser(encoder.tower(64), entities=3, dim=8).eval()
    images = torch.randint(0, 256, (2 * step + 3, 3, 64, 64), dtype=torch.uint8)
    seen: list[int] = []
    frozen = recogniser.tower.frozen
    monkeypatch.setattr(recogniser.tower, "frozen", lambda batch: seen.append(len(batch)) or frozen(batch))
    with torch.no_grad():
        together = recogniser.embed(images)
        one_by_one = torch.cat([recogniser.embed(images[i:i + 1]) for i in range(len(images))])
    assert seen[:3] == [step, step, 3] and together.shape == (len(images), 8)
    assert torch.allclose(together, one_by_one, atol=2e-3)  # kernels per batch size round differently

    blocks: list[int] = []
    extract = encoder.net.extract_features
    monkeypatch.setattr(encoder.net, "extract_features", lambda batch: blocks.append(len(batch)) or extract(batch))
    pictures = [Image.new("RGB", (30, 20), (i * 20, 0, 0)) for i in range(image_batch(encoder.device) + 1)]
    vectors = encoder.encode_batch(pictures)
    assert max(blocks) <= image_batch(encoder.device) and sum(blocks) == len(pictures)
    assert np.allclose(vectors[-1], encoder.encode_batch(pictures[-1:])[0], atol=2e-3)


def test_the_views_of_a_picture_vote_by_mean_probability() -> None:
    """One sure view (a crop that kept only the part of a flag two countries share) must not
    outvote four views that agree on another entity: the embedding a picture gets names the
    entity with the highest mean probability over its views."""
    from types import SimpleNamespace

    from kqa.recognise import Recogniser

    tower = SimpleNamespace(dim=4, load=lambda view: torch.zeros(3, 8, 8, dtype=torch.uint8))
    recogniser = Recogniser(tower, entities=3, dim=4)  # type: ignore[arg-type]
    with torch.no_grad():
        recogniser.entity_vectors.copy_(torch.eye(3, 4))
    views = torch.nn.functional.normalize(torch.tensor(
        [[1.0, 0.0, 0.0, 0.0]] + [[0.5, 0.7, 0.0, 0.0]] * 4), dim=-1)  # whole picture + 4 crops
    recogniser.embed = lambda pixels: views[:len(pixels)]  # type: ignore[method-assign]
    surest = int(recogniser.logits(views).softmax(-1).amax(-1).argmax())
    assert int(recogniser.logits(views[surest:surest + 1]).argmax()) == 0  # the surest view alone: entity 0
    embedding = torch.from_numpy(recogniser.encode_batch([Image.new("RGB", (40, 30))]))
    assert embedding.shape == (1, 4)
    assert int(recogniser.logits(embedding).argmax()) == 1


def _an_answer_of_another_type_than_asked_is_not_confident(answerer, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
                                                           ) -> None:
    """The answer-type head reads 'country' while the best answer is a city: the confidence
    is the answer's score times the city type's odds, and the message says why."""
    question = "what is the capital of Land C"
    best = answerer.ask(question).answers[0]
    assert answerer.type_names[int(answerer.knowledge.node_type[best.node])] == "city"
    forward = answerer.model.forward
    country = answerer.type_names.index("country")

    def asks_for_a_country(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = forward(*args, **kwargs)
        out.type_logits = torch.full_like(out.type_logits, -6.0)
        out.type_logits[:, country] = 6.0
        return out

    monkeypatch.setattr(answerer.model, "forward", asks_for_a_country)
    result = answerer.ask(question)
    assert result.answers[0].name == best.name and result.answers[0].score == pytest.approx(best.score)
    assert result.confidence == pytest.approx(best.score * math.exp(-12.0), rel=1e-3)
    assert "type 'city'" in result.message and "ask for 'country'" in result.message


def _an_answer_put_first_by_its_type_says_what_the_wording_read_as(answerer,  # type: ignore[no-untyped-def]
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer-type head near-certain that a capital question asks for a country: a country
    reached (the topic at hop 0, or a neighbour where the reading gives "borders" some weight)
    goes above the capital the words were read as asking for, with a low confidence, and the
    message names what the wording was read as."""
    question = "what is the capital of Land C"
    capital = answerer.ask(question).answers[0]
    country = answerer.type_names.index("country")

    def asks_for_a_country(fused, knowledge):  # type: ignore[no-untyped-def]
        logits = torch.full((fused.shape[0], len(answerer.type_names)), -6.0, device=fused.device)
        logits[:, country] = 6.0
        return logits

    with monkeypatch.context() as patch:
        patch.setattr(answerer.model, "_type_logits", asks_for_a_country)
        result = answerer.ask(question)
    first_type = answerer.type_names[int(answerer.knowledge.node_type[result.answers[0].node])]
    assert first_type == "country" and result.confidence < 0.3
    assert f"answer is a 'city' ({capital.name})" in result.message
    assert "ask for a 'country'" in result.message


def _the_entity_a_question_in_words_names_is_no_confident_answer(answerer, photo,  # type: ignore[no-untyped-def]
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Read as "which entity is this?" (hop 0), a question in words is answered by the entity it
    names, which no fact supports: no confidence, and the message says so. Asked about a
    picture, hop 0 is the recognition and keeps its confidence."""
    forward = answerer.model.forward

    def stops_at_the_topic(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = forward(*args, **kwargs)
        out.hop_probs = torch.zeros_like(out.hop_probs)
        out.hop_probs[:, 0] = 1.0
        out.scores = answerer.propagator.combine(out.hops, out.hop_probs, out.hop_probs.shape[0])
        return out

    monkeypatch.setattr(answerer.model, "forward", stops_at_the_topic)
    in_words = answerer.ask("who is the president of Land C")
    assert in_words.answers[0].name == "Land C" and in_words.answers[0].hop == 0
    assert in_words.answers[0].score > 0.3 and in_words.confidence == pytest.approx(0.0, abs=1e-6)
    assert "the entity the question names" in in_words.message
    pictured = answerer.ask("which country is this", image=photo)
    # the recognition's own probability, whatever it is: this tiny model's for this photo was
    # 0.69 trained on the CPU, 0.25 under bf16 autocast and 0.12 trained on an H200 (top-1 each time)
    assert pictured.answers[0].hop == 0 and pictured.answers[0].name == "Land C"
    assert pictured.confidence == pytest.approx(pictured.answers[0].score) and pictured.confidence > 0.05
    assert "the entity the question names" not in pictured.message


def _a_picture_of_nothing_gets_a_low_confidence_that_says_so(answerer, photo) -> None:  # type: ignore[no-untyped-def]
    """A blank picture, noise and a scene photo training never used show no entity of the KG:
    "none of these" wins, the confidence is low and the message says why; a flag photo is not
    turned down."""
    from kqa.answer import LOW_CONFIDENCE
    from kqa.augment import backgrounds

    nothing = [Image.new("RGB", (120, 80), (255, 255, 255)), Image.new("RGB", (120, 80)),
               Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 120, 3), dtype=np.uint8)),
               backgrounds("test")[0]]
    for picture in nothing:
        result = answerer.ask("what is the capital of this country", image=picture)
        assert result.confidence < LOW_CONFIDENCE and result.nothing_shown >= 0.5, result.image_topic
        assert "picture seems to show none of the entities" in result.message
    flag = answerer.ask("what is the capital of this country", image=photo)
    assert flag.nothing_shown < 0.5 and "none of the entities" not in flag.message


def _a_picture_of_nothing_leaves_the_topic_to_the_words(answerer) -> None:  # type: ignore[no-untyped-def]
    """A question that names an entity, asked with a picture of nothing: the picture gives no
    topic, so the answer is as sure as without it (the text/image gate was never trained on such
    questions, and halved the named entity's share before)."""
    question = "what is the capital of Land C"
    in_words = answerer.ask(question)
    with_blank = answerer.ask(question, image=Image.new("RGB", (120, 80), (255, 255, 255)))
    assert with_blank.nothing_shown >= 0.5 and with_blank.topic_from_text >= 0.95
    assert with_blank.answers[0].name == in_words.answers[0].name
    assert with_blank.answers[0].score >= 0.95 * in_words.answers[0].score


def test_a_picture_several_entities_show_is_taken_for_the_best_connected_one(lands: Path) -> None:
    """Land E flies Land A's flag and has fewer facts: a picture of that flag counts as Land A
    (France, not the territories that fly its flag), whatever split the recogniser learnt."""
    from kqa.answer import _picture_groups
    from kqa.model import KnowledgeTensors, picture_probs

    graph = load_graph("flags")
    a, e, b = (_named(graph, f"Land {k}") for k in "AEB")
    assert graph.degree()[a] > graph.degree()[e]
    group, share, count = _picture_groups(graph)
    assert count == 1 and int(group[a]) == int(group[e]) >= 0 and int(group[b]) == -1
    assert float(share[a]) == 1.0 and float(share[e]) == 0.0
    knowledge = KnowledgeTensors(torch.zeros(2, 4), torch.zeros(graph.num_nodes, 4), torch.zeros(graph.num_nodes, 2),
                                 picture_group=group, picture_share=share, picture_groups=count)
    logits = torch.tensor([[0.0, 1.0, 0.5, -5.0]], requires_grad=True)  # rows A, E, B, "none of these"
    probs = picture_probs(logits, torch.tensor([a, e, b]), knowledge)
    soft = torch.softmax(logits, -1)[0].tolist()
    assert probs[0].tolist() == pytest.approx([soft[0] + soft[1], 0.0, soft[2]])
    probs[0, 0].backward()  # trainable through it
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0
