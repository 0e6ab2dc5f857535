"""The answer model: fusion plugins, training that learns, checkpoints, refusals, evidence."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import kqa
import kqa.answer
import kqa.graph
import kqa.store
from kqa.cli import main
from kqa.errors import ModelMismatchError
from kqa.plugins import get_plugins

from helpers import assert_read_as_written

pytestmark = pytest.mark.slow


# -- fusion plugins (no KG needed) ------------------------------------------------------------
@pytest.mark.parametrize("name", ["concat", "gated", "cross-attention"])
def test_fusion_shapes_shares_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    dims = {"text": 12, "image": 20, "kg": 8}
    fusion = get_plugins().fusion(name).factory(dims, 16)
    features = {m: torch.randn(4, d, requires_grad=True) for m, d in dims.items()}
    present = {"text": torch.ones(4, dtype=torch.bool), "kg": torch.tensor([True, True, False, False]),
               "image": torch.tensor([True, False, True, False])}
    fused, shares = fusion(features, present)
    assert fused.shape == (4, 16) and shares.shape == (4, 3)
    assert torch.allclose(shares.sum(-1), torch.ones(4), atol=1e-5)
    order = fusion.modalities
    for row in range(4):
        for j, m in enumerate(order):
            if not present[m][row]:
                assert shares[row, j] == 0
    (fused.square().sum() + shares[:, 0].sum()).backward()
    assert features["text"].grad is not None and features["text"].grad.abs().sum() > 0
    assert features["image"].grad[1].abs().sum() == 0  # an absent modality gets no gradient
    trained = [p for p in fusion.parameters() if p.requires_grad]
    assert sum(1 for p in trained if p.grad is not None and p.grad.abs().sum() > 0) >= len(trained) // 2



def test_cross_attention_computes_what_its_attention_module_would() -> None:
    """The fusion reads its ``nn.MultiheadAttention``'s weights directly (faster for one
    query); results, shares and saved models must be the module's own."""
    torch.manual_seed(1)
    fusion = get_plugins().fusion("cross-attention").factory({"text": 12, "image": 20, "kg": 8}, 16)
    keys = torch.randn(5, 3, 16)
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [1, 1, 0], [1, 0, 0], [0, 1, 1]], dtype=torch.bool)
    attended, weights = fusion.attend(keys, mask)
    query = fusion.query.expand(5, -1, -1)
    expected, expected_weights = fusion.attention(query, keys, keys, key_padding_mask=~mask,
                                                  need_weights=True, average_attn_weights=True)
    assert torch.allclose(attended, expected.squeeze(1), atol=1e-6)
    assert torch.allclose(weights, expected_weights.squeeze(1), atol=1e-6)

# -- a trained tiny model (conftest's trained_films), shared by the tests below ---------------
@pytest.fixture
def home(films_home: dict[str, Path]) -> dict[str, Path]:
    return films_home


def test_tiny_model_learns(home: dict[str, Path]) -> None:
    report = home["report"]
    assert report.val_hits1 >= 0.8  # type: ignore[attr-defined]
    result = kqa.evaluate("films", [home["test"]])
    graph = kqa.open_kg("films").graph
    assert result.hits1 >= 0.8, result.as_dict()  # chance is about 1 / graph.num_nodes
    assert graph.num_nodes > 100
    linked = kqa.evaluate("films", [home["test"]], gold_topics=False)
    assert linked.hits1 >= 0.75, linked.as_dict()


def test_checkpoint_is_safetensors_and_json(home: dict[str, Path]) -> None:
    from safetensors.torch import load_file

    folder = home["model"]
    weights = load_file(str(folder / "model.safetensors"))
    assert "rel_offset" in weights
    meta = json.loads((folder / "config.json").read_text())
    assert meta["kg"]["name"] == "films" and meta["model"]["fusion"] == "gated"
    assert meta["encoders"]["text"]["name"] == "minilm" and meta["encoders"]["text"]["dim"] == 384
    assert (folder / "curves.png").stat().st_size > 1000
    assert json.loads((folder / "history.json").read_text())[0]["epoch"] == 1


def test_round_trip_answers_the_same(home: dict[str, Path]) -> None:
    first = kqa.ask("films", "what genres are the films directed by someone", top_k=3)
    kqa.answer.clear_answerers()
    second = kqa.ask("films", "what genres are the films directed by someone", top_k=3)
    assert [a.name for a in first.answers] == [a.name for a in second.answers]


def test_ask_joins_a_hyphenated_schema_word(home: dict[str, Path]) -> None:
    """"dir-ected" is read as the relation word "directed" (the encoder would read "dir", "-",
    "ected"); a hyphen that makes no schema word stays."""
    assert_read_as_written(home["test"], "what genres are the films directed by", "directed", "dir-ected")
    assert kqa.ask("films", "what gen-res are the films").question == "what gen-res are the films"


def test_ask_gives_evidence_paths(home: dict[str, Path]) -> None:
    line = next(l for l in home["test"].read_text().splitlines() if l.startswith("what genres are the films directed by"))
    question, answers = line.split("\t")
    result = kqa.ask("films", question.replace("[", "").replace("]", ""))
    top = result.answers[0]
    assert top.name in answers.split("|")
    assert top.hop == 2
    path = top.evidence[0]
    director = question[question.index("[") + 1:question.index("]")]
    assert path[0]["relation"] == "directed by" and path[0]["object"] == director
    assert path[1]["subject"] == path[0]["subject"] and path[1]["object"] == top.name
    assert set(result.modalities) == {"text", "kg"} and abs(sum(result.modalities.values()) - 1) < 1e-3
    assert result.topic[0]["name"] == director and result.confidence > 0.5


def test_wrong_kg_is_refused(home: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other.tsv"
    other.write_text("a\tlikes\tb\n", encoding="utf-8")
    kqa.load_kg(other, "other")
    with pytest.raises(ModelMismatchError, match="trained for KG 'films'"):
        kqa.ask("other", "what does a like", model=home["model"])
    kqa.drop_kg("other")


def test_changed_encoder_is_refused(home: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(home["model"], copy)
    meta = json.loads((copy / "config.json").read_text())
    meta["encoders"]["text"]["version"] = "something-else"
    (copy / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelMismatchError, match="encoder"):
        kqa.ask("films", "who directed it", model=copy)


def test_cli_eval_and_ask_json(home: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--kg", "films", "--questions", str(home["test"]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] > 20 and result["hits@1"] >= 0.8 and "mrr" in result
    assert list(result["files"]) == [str(home["test"])]
    question = home["test"].read_text().splitlines()[0].split("\t")[0]
    assert main(["ask", question, "--kg", "films", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["answers"] and {"name", "score", "evidence"} <= set(answer["answers"][0])
    assert main(["ask", "who directed it", "--kg", "films", "--model", "/nonexistent", "--json"]) == 1


def test_training_is_deterministic(home: dict[str, Path], tmp_path: Path) -> None:
    from safetensors.torch import load_file

    runs = []
    for i in range(2):
        report = kqa.train("films", [home["train"]], out=tmp_path / f"m{i}", epochs=1, seed=3,
                           deterministic=True)  # as documented: threads (and CUDA atomics) sum in any order
        runs.append(load_file(str(Path(report.model_dir) / "model.safetensors")))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_training_keeps_the_average_of_its_weights(home: dict[str, Path], tmp_path: Path) -> None:
    """The weights validated and saved are the moving average; the steps themselves are the
    same with or without it (deterministic runs: the plain run's weights are the last step's)."""
    from safetensors.torch import load_file

    saved = {}
    for ema in (0.0, 0.99):
        report = kqa.train("films", [home["train"]], out=tmp_path / f"ema{ema}", epochs=1, seed=3,
                           deterministic=True, ema=ema)
        saved[ema] = load_file(str(Path(report.model_dir) / "model.safetensors"))
    trained = [k for k in saved[0.0] if not torch.equal(saved[0.0][k], saved[0.99][k])]
    assert "rel_offset" in trained and len(trained) > 10


def test_a_small_training_set_is_passed_over_until_training_has_its_minimum_steps(
        home: dict[str, Path], tmp_path: Path) -> None:
    from kqa.training import TrainConfig, passes_per_epoch

    assert passes_per_epoch(100, TrainConfig(epochs=12, batch_size=64, min_steps=0)) == 1
    config = TrainConfig(epochs=12, batch_size=64, min_steps=240)  # 100 questions: 2 steps an epoch
    passes = passes_per_epoch(100, config)
    steps_of = lambda n: math.ceil(n * 100 / 64) * 12  # noqa: E731
    assert steps_of(passes) >= 240 > steps_of(passes - 1)  # the fewest passes that make them
    assert passes_per_epoch(100_000, TrainConfig(epochs=12, batch_size=64, min_steps=240)) == 1
    steps = {}
    for floor in (0, 40):
        report = kqa.train("films", [home["train"]], out=tmp_path / f"steps{floor}", epochs=2, seed=3,
                           val_fraction=0.0, min_steps=floor)
        steps[floor] = [h["steps"] for h in report.history]
    assert len(steps[0]) == len(steps[40]) == 2  # epochs keep their meaning; each is longer
    assert steps[0][-1] < 40 <= steps[40][-1] < 40 + steps[0][-1]


def test_without_validation_the_kept_weights_are_judged_on_a_sample_of_training_questions(
        home: dict[str, Path], tmp_path: Path) -> None:
    """With no validation questions the epoch kept is chosen by the weights that are kept (the
    average), on a fixed sample of the training questions, not by the live weights' running
    figures during the epoch."""
    from kqa.training import training_probe

    report = kqa.train("films", [home["train"]], out=tmp_path / "noval", epochs=3, seed=3,
                       val_fraction=0.0, patience=10)
    assert report.validation == 0
    judged = [h["probe_hits@1"] for h in report.history]
    assert len(judged) == 3 and all("val_hits@1" not in h for h in report.history)
    assert report.val_hits1 == max(round(j, 4) for j in judged)
    metrics = json.loads((tmp_path / "noval" / "config.json").read_text(encoding="utf-8"))["metrics"]
    assert "val_hits@1" not in metrics and metrics["probe_hits@1"] == report.val_hits1  # not called validation
    sample = training_probe(list(range(1000)), seed=3)  # type: ignore[arg-type]
    assert sample == training_probe(list(range(1000)), seed=3) and len(sample) == 256


def test_the_weight_average_follows_the_weights_and_swaps_back() -> None:
    from kqa.errors import KqaError
    from kqa.training import WeightAverage

    weight = torch.nn.Parameter(torch.zeros(3))
    average = WeightAverage([weight], 0.9)
    weight.data.fill_(1.0)
    average.update()
    assert float(average.shadow[0][0]) > 0.8  # the first updates ramp up: the start is soon forgotten
    for _ in range(200):
        average.update()
    assert torch.allclose(average.shadow[0], torch.ones(3), atol=1e-4)
    weight.data.fill_(5.0)
    average.swap()
    assert torch.allclose(weight.data, torch.ones(3), atol=1e-4) and float(average.shadow[0][0]) == 5.0
    average.swap()
    assert float(weight.data[0]) == 5.0
    with pytest.raises(KqaError, match="ema"):
        WeightAverage([weight], 1.0)  # an average that never moves would keep the random start


def test_a_training_topic_holds_the_nodes_its_written_name_also_links_to(tmp_path: Path) -> None:
    """MetaQA's tag "ann lee" beside the director Ann Lee: answering links both (1.0 and 0.98),
    so training sees both; evaluating with gold topics gives the named one only."""
    from kqa.graph import load_graph
    from kqa.link import get_linker
    from kqa.questions import Question
    from kqa.training import make_examples

    kb = tmp_path / "tags.tsv"
    rows = [("Up North", "directed_by", "Ann Lee"), ("Up North", "has_tags", "ann lee"),
            ("Down South", "starred_actors", "Ann Lee"), ("Down South", "has_tags", "drama")]
    kb.write_text("".join(f"{s}\t{r}\t{o}\n" for s, r, o in rows), encoding="utf-8")
    kqa.load_kg(kb, "tags")
    graph, linker = load_graph("tags"), get_linker("tags")
    asked = [Question("what did [Ann Lee] direct", ["Up North"]),
             Question("[Down South] is about", ["drama"])]
    trained, _ = make_examples(asked, graph, linker, twins=True)
    gold, _ = make_examples(asked, graph, linker)
    assert sorted((graph.label(n), w) for n, w in trained[0].topic) == [("Ann Lee", 0.5), ("ann lee", 0.5)]
    assert [(graph.label(n), w) for n, w in gold[0].topic] == [("Ann Lee", 1.0)]
    assert [(graph.label(n), w) for n, w in trained[1].topic] == [("Down South", 1.0)]  # no twin


def _fine_tuned_start(folder: Path, meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """(the source's weights, a new model's weights after ``_load_init`` from it for a KG with
    one more relation, that model's config)."""
    from safetensors.torch import load_file

    from kqa.answer import _load_init, build_model
    from kqa.model import ModelConfig

    source = load_file(str(folder / "model.safetensors"))
    config = ModelConfig(**{**meta["model"], "num_slots": meta["model"]["num_slots"] + 2})  # another KG
    torch.manual_seed(0)
    model = build_model(config)
    _load_init(model, folder, meta, config)
    return source, model.state_dict(), config


def test_fine_tuning_copies_what_reasons_and_not_what_reads_the_old_wordings(home: dict[str, Path]) -> None:
    """The relation reader, hop counts and fusion come from the other model; its token
    transformer and mention tagger, which read its own training wordings, start fresh."""
    meta = json.loads((home["model"] / "config.json").read_text())
    source, state, config = _fine_tuned_start(home["model"], meta)
    for copied in ("rel_match.weight", "query_mix.0.weight", "stop_head.0.weight", "hop_query"):
        assert torch.equal(state[copied], source[copied]), copied
    for fresh in ("context.layers.0.linear1.weight", "token_proj.0.weight", "mention_head.weight"):
        assert not torch.equal(state[fresh], source[fresh]), fresh
    assert state["rel_offset"].shape[0] == config.num_slots and not state["rel_offset"].any()


def test_a_model_trained_on_generated_questions_passes_on_its_reading_too(home: dict[str, Path]) -> None:
    """A source that read the generator's wordings (its config counts generated questions)
    reads what a new KG's generated questions say: its token transformer and tagger are
    passed on as well; its KG's relation offsets still start fresh."""
    from kqa.answer import not_passed_on

    meta = json.loads((home["model"] / "config.json").read_text())
    assert meta["data"]["generated"] == 0 and "context." in not_passed_on(meta)
    assert "context." in not_passed_on({"data": {"examples": 10}})  # saved before the count
    meta["data"]["generated"] = 500
    source, state, _config = _fine_tuned_start(home["model"], meta)
    for copied in ("context.layers.0.linear1.weight", "token_proj.0.weight", "mention_head.weight",
                   "rel_match.weight", "stop_head.0.weight"):
        assert torch.equal(state[copied], source[copied]), copied
    assert not state["rel_offset"].any()


def test_fine_tune_on_a_new_kg(home: dict[str, Path], tmp_path: Path) -> None:
    """--init starts from a trained model on a KG with other entities and relations."""
    kb = tmp_path / "books.tsv"
    rows = [(f"Book {i}", "written_by", f"Author {i % 5}") for i in range(20)]
    rows += [(f"Book {i}", "published_in", str(1990 + i % 7)) for i in range(20)]
    kb.write_text("".join(f"{s}\t{r}\t{o}\n" for s, r, o in rows), encoding="utf-8")
    questions = tmp_path / "books.txt"
    lines = [f"who wrote [Book {i}]\tAuthor {i % 5}" for i in range(20)]
    lines += [f"when was [Book {i}] published\t{1990 + i % 7}" for i in range(20)]
    questions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    kqa.load_kg(kb, "books")
    kqa.build_index("books", kinds=("entities", "relations"))
    report = kqa.train("books", [questions], out=tmp_path / "books-model", init=home["model"], epochs=8)
    meta = json.loads((Path(report.model_dir) / "config.json").read_text())
    assert meta["init"] == str(home["model"]) and meta["kg"]["name"] == "books"
    assert meta["model"]["num_slots"] == 4  # the new KG's relations, both directions
    result = kqa.ask("books", "who wrote Book 7", model=report.model_dir)
    assert result.answers and result.answers[0].name == "Author 2"
    kqa.drop_kg("books")


def test_answer_type_moves_the_hop_count_to_answers_of_the_asked_type() -> None:
    """Hop 1 reaches a country, hop 2 a currency; the hop-count head prefers hop 1, the answer
    type head asks for a currency: the hop whose answers are currencies must win."""
    from kqa.model import type_weight, _typed_hops
    from kqa.retrieve import Sparse

    node_type = torch.tensor([0, 0, 1])  # nodes 0, 1: countries; node 2: a currency
    hops = [Sparse(torch.tensor([0]), torch.tensor([0]), torch.tensor([1.0])),
            Sparse(torch.tensor([0]), torch.tensor([1]), torch.tensor([1.0])),
            Sparse(torch.tensor([0]), torch.tensor([2]), torch.tensor([0.9])),
            Sparse.empty()]
    hop_probs = torch.tensor([[0.0, 0.8, 0.15, 0.05]])
    asks_currency = torch.tensor([[-4.0, 4.0]])
    typed = _typed_hops(hop_probs, hops, asks_currency, node_type)
    assert typed[0, 2] > 0.9 and abs(float(typed.sum()) - 1) < 1e-5
    weight = type_weight(asks_currency)  # a currency counts fully, a country barely
    assert float(weight[0, 1]) == 1.0 and float(weight[0, 0]) < 1e-3
    neutral = _typed_hops(hop_probs, hops, torch.zeros(1, 2), node_type)
    reached = hop_probs * torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # hop 3 reached nothing
    assert torch.allclose(neutral, reached / reached.sum())  # no type preference: only that


def test_confidence_counts_the_answers_type_against_the_asked_one() -> None:
    from kqa.answer import type_fit

    asks_region = torch.tensor([0.0, 4.6, 0.0])  # types: subregion, region, city
    assert type_fit(asks_region, 1) == pytest.approx(1.0)
    assert type_fit(asks_region, 0) == pytest.approx(math.exp(-4.6), rel=1e-4)  # a subregion: its odds
    assert type_fit(None, 0) == 1.0 and type_fit(asks_region, None) == 1.0  # untyped KG / no answer


def test_confidence_in_words_counts_only_what_facts_carry() -> None:
    from kqa.answer import fact_share

    assert fact_share([0.9, 0.0, 0.0], with_image=False) == 0.0  # the named entity itself
    assert fact_share([0.0, 0.6, 0.2], with_image=False) == pytest.approx(1.0)
    assert fact_share([0.2, 0.6, 0.0], with_image=False) == pytest.approx(0.75)
    assert fact_share([0.9, 0.0, 0.0], with_image=True) == 1.0  # hop 0: the picture's entity
    assert fact_share([0.0, 0.0], with_image=False) == 1.0


def test_answer_type_moves_the_last_hops_relation_to_one_leading_to_that_type() -> None:
    """Slot 0 leads to subregions, slot 1 to regions. The reader prefers slot 0, the type head
    asks for a region: where the question ends after hop 1, slot 1 must win; where it surely
    goes on (hop 1 of two), hop 1's reading is left as it is."""
    from kqa.model import _typed_relations

    slot_types = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # types: 0 subregion, 1 region
    reader = [torch.tensor([[0.7, 0.3]])] * 2
    asks_region = torch.tensor([[-3.0, 3.0]])
    one_hop = _typed_relations(reader, torch.tensor([[0.0, 1.0, 0.0]]), asks_region, slot_types)
    assert one_hop[0][0, 1] > 0.9 and torch.allclose(one_hop[0].sum(-1), torch.ones(1))
    two_hops = _typed_relations(reader, torch.tensor([[0.0, 0.0, 1.0]]), asks_region, slot_types)
    assert torch.allclose(two_hops[0], reader[0]) and two_hops[1][0, 1] > 0.9


def test_a_sure_type_head_outvotes_a_reader_sure_of_a_wording_it_never_saw() -> None:
    """The reader reads slot 0 (subregion) at 0.999 for a question that ends after hop 1. A type
    head sure (0.99) that it asks for a region outvotes it: in a plain product the reader's
    999 : 1 would beat the head's 99 : 1. A head at 0.6 leaves the reader's reading."""
    from kqa.model import _typed_relations

    slot_types = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # types: 0 subregion, 1 region
    reader = [torch.tensor([[0.999, 0.001]])]
    ends_after_one = torch.tensor([[0.0, 1.0]])
    sure = torch.log(torch.tensor([[0.01, 0.99]]))
    unsure = torch.log(torch.tensor([[0.4, 0.6]]))
    assert _typed_relations(reader, ends_after_one, sure, slot_types)[0][0, 1] > 0.7
    assert _typed_relations(reader, ends_after_one, unsure, slot_types)[0][0, 0] > 0.9


def test_a_near_certain_answer_type_ranks_answers_of_other_types_below() -> None:
    """Nodes 0–1 are currencies, 2–3 languages. The reader's hop reached a currency first; a
    type head near-certain the question asks for a language puts the language first. An unsure
    head, or one whose type no reached answer has, leaves the ranking to the reader."""
    from kqa.model import SURE_TYPE, _typed_answers

    node_type = torch.tensor([0, 0, 1, 1])
    scores = torch.tensor([[0.9, 0.0, 0.08, 0.0]])
    sure = torch.tensor([[0.0, 9.0]])  # language at 0.9999
    assert torch.softmax(sure, -1)[0, 1] >= SURE_TYPE
    typed = _typed_answers(scores, sure, node_type)
    assert int(typed.argmax()) == 2 and typed[0, 2] == pytest.approx(0.08) and typed[0, 0] < 0.01
    unsure = torch.tensor([[0.0, 2.0]])  # language at 0.88
    assert torch.equal(_typed_answers(scores, unsure, node_type), scores)
    none_of_it = torch.tensor([[0.9, 0.5, 0.0, 0.0]])
    assert torch.equal(_typed_answers(none_of_it, sure, node_type), none_of_it)
    both = torch.cat([scores, scores])  # per question
    mixed = _typed_answers(both, torch.cat([sure, unsure]), node_type)
    assert int(mixed[0].argmax()) == 2 and torch.equal(mixed[1], scores[0])
    # the asked type reached only faintly (a hop the count gave little to): still first, as the
    # reader's answer times the head's odds (0.9 × 1.2e-4) would otherwise outrank it
    faint = torch.tensor([[0.9, 0.0, 0.00005, 0.0]])
    typed = _typed_answers(faint, sure, node_type)
    assert int(typed.argmax()) == 2 and typed[0, 2] == pytest.approx(0.00005) and 0 < typed[0, 0] < 0.00005


def test_answer_types_are_read_by_name_and_skipped_for_untyped_kgs(home: dict[str, Path]) -> None:
    from kqa.answer import answer_type_names
    from kqa.graph import type_name

    assert type_name("literal:integer") == "integer number" and type_name(None) == "entity"
    assert type_name("literal:gYear") == "year"  # "which year", not "which gYear value"
    graph = kqa.open_kg("films").graph
    assert answer_type_names(graph) == ["entity"]  # one type: nothing to tell answers apart
    meta = json.loads((home["model"] / "config.json").read_text())
    assert meta["model"]["answer_types"] is False and meta["model"]["typed_relations"] is False


def test_top_answers_are_ranked_among_reached_nodes_only() -> None:
    """Ranking only the nodes a hop reached gives the dense top-k (every other node scores 0)."""
    from kqa.retrieve import Sparse

    generator = torch.Generator().manual_seed(0)
    scores = torch.zeros(1000)
    hops = []
    for size in (1, 40, 300):
        node = torch.randint(0, 1000, (size,), generator=generator)
        hops.append(Sparse(torch.zeros(size, dtype=torch.long), node, torch.rand(size, generator=generator)))
        scores[node] = torch.rand(size, generator=generator)
    values, nodes = kqa.answer.top_reached(scores, hops, 5)
    dense = scores.topk(5)
    assert nodes == dense.indices.tolist() and values == dense.values.tolist()
    assert kqa.answer.top_reached(torch.zeros(10), [Sparse.empty()], 5) == ([], [])


def test_equal_scores_are_ranked_by_node_whatever_the_number_of_answers_asked() -> None:
    """As evaluation's argmax ranks them: the first answer must not depend on ``top_k``."""
    from kqa.retrieve import Sparse

    scores = torch.zeros(100)
    nodes = torch.tensor([90, 7, 42, 63, 15, 88, 3, 71, 29, 50])
    scores[nodes] = 0.8
    scores[nodes[:3]] = 0.5
    hops = [Sparse(torch.zeros(10, dtype=torch.long), nodes, scores[nodes])]
    first = [kqa.answer.top_reached(scores, hops, k)[1][0] for k in range(1, 11)]
    assert first == [int(scores.argmax())] * 10 == [3] * 10
    assert kqa.answer.top_reached(scores, hops, 10)[1] == [3, 15, 29, 50, 63, 71, 88, 7, 42, 90]


def test_the_type_vote_on_relations_is_cast_when_answering_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trained through the vote, the relation reader stops learning what types tell apart."""
    from types import SimpleNamespace

    import numpy as np

    import kqa.model
    from kqa.answer import build_model
    from kqa.model import Batch, KnowledgeTensors, ModelConfig
    from kqa.retrieve import Propagator, Sparse

    graph = SimpleNamespace(src=np.array([0]), dst=np.array([1]), rel=np.array([0]), num_nodes=2, num_relations=1)
    propagator = Propagator(graph)  # type: ignore[arg-type]
    model = build_model(ModelConfig(num_slots=2, text_dim=8, hidden=16, heads=2, answer_types=True,
                                    typed_relations=True))
    knowledge = KnowledgeTensors(torch.randn(2, 8), torch.randn(2, 8), torch.ones(2, 2) / 2,
                                 node_type=torch.tensor([0, 1]), type_text=torch.randn(2, 8),
                                 slot_types=torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    batch = Batch(torch.randn(1, 4, 8), torch.ones(1, 4, dtype=torch.bool), torch.randn(1, 8),
                  Sparse(torch.tensor([0]), torch.tensor([0]), torch.tensor([1.0])))
    votes: list[bool] = []
    real = kqa.model._typed_relations
    monkeypatch.setattr(kqa.model, "_typed_relations", lambda *a: votes.append(True) or real(*a))
    model.train()
    model(batch, knowledge, propagator)
    assert votes == []
    model.eval()
    with torch.no_grad():
        model(batch, knowledge, propagator)
    assert votes == [True]


def test_a_hop_follows_the_relations_its_frontier_has() -> None:
    """A reader that takes "which continent is X part of" for the relation from a subregion to
    its continent, X a country, follows the best reading X has instead of losing the score."""
    from types import SimpleNamespace

    import numpy as np

    from kqa.retrieve import Propagator, Sparse

    # 0 country -subregion-> 1 subregion -part_of-> 2 region; 0 -region-> 2
    graph = SimpleNamespace(src=np.array([0, 0, 1]), dst=np.array([1, 2, 2]), rel=np.array([0, 1, 2]),
                            num_nodes=3, num_relations=3)
    propagator = Propagator(graph)  # type: ignore[arg-type]
    probs = torch.tensor([[0.1, 0.3, 0.6, 0.0, 0.0, 0.0]]).expand(2, -1)
    start = Sparse(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([1.0, 1.0]))
    hops, followed = propagator.run(start, [probs])
    assert torch.allclose(followed[0][0], torch.tensor([0.25, 0.75, 0.0, 0.0, 0.0, 0.0]))
    assert torch.allclose(followed[0][1], torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]))  # it has part_of
    reached = [{node: v for node, v in hops[1].to_dict(row).items() if v > 0} for row in (0, 1)]
    assert reached == [pytest.approx({1: 0.25, 2: 0.75}), pytest.approx({2: 1.0})]  # no score lost
    # training follows the reading as it is: the loss must still teach the reader
    hops, followed = propagator.run(start, [probs], applicable=False)
    assert torch.equal(followed[0], probs) and hops[1].to_dict(0) == pytest.approx({1: 0.1, 2: 0.3})


def test_a_relation_the_frontier_lacks_passes_its_reading_on_to_one_leading_to_the_same_type() -> None:
    """Read mostly as the subregion's continent (a region), "which continent is X part of"
    about a country X asks for a region: with the nodes' types known, the lacking relation's
    probability goes to X's relation to its region, not, by the odds of the runner-up
    reading, to its subregion; a relation no slot of the frontier matches in type is passed
    on in proportion, as without types; several frontier nodes pass on what they lack."""
    from types import SimpleNamespace

    import numpy as np

    from kqa.answer import _slot_types
    from kqa.retrieve import Propagator, Sparse

    # 0 country -subregion-> 1 subregion -part_of-> 2 region; 0 -region-> 2; 3 country -subregion-> 1
    graph = SimpleNamespace(src=np.array([0, 0, 1, 3]), dst=np.array([1, 2, 2, 1]), rel=np.array([0, 1, 2, 0]),
                            num_nodes=4, num_relations=3)
    types = _slot_types(graph, torch.tensor([0, 1, 2, 0]))  # type: ignore[arg-type]
    propagator = Propagator(graph)  # type: ignore[arg-type]
    probs = torch.tensor([[0.1, 0.3, 0.6, 0.0, 0.0, 0.0]])
    start = Sparse(torch.tensor([0]), torch.tensor([0]), torch.tensor([1.0]))
    hops, followed = propagator.run(start, [probs], slot_types=types)
    assert torch.allclose(followed[0][0], torch.tensor([0.1, 0.9, 0.0, 0.0, 0.0, 0.0]))
    assert {n: v for n, v in hops[1].to_dict(0).items() if v > 0} == pytest.approx({1: 0.1, 2: 0.9})
    # nothing X has leads to what the lacking slot 3 (backwards subregion: countries) gives: in proportion
    odd = torch.tensor([[0.1, 0.3, 0.0, 0.6, 0.0, 0.0]])
    _hops, followed = propagator.run(start, [odd], slot_types=types)
    assert torch.allclose(followed[0][0], torch.tensor([0.25, 0.75, 0.0, 0.0, 0.0, 0.0]))
    # a frontier of two countries, one without a region edge: what it lacks stays a region
    both = Sparse(torch.tensor([0, 0]), torch.tensor([0, 3]), torch.tensor([0.5, 0.5]))
    region = torch.tensor([[0.0, 0.5, 0.5, 0.0, 0.0, 0.0]])
    followed = propagator.applicable(both.batch, both.node, both.value, region, types)
    assert torch.allclose(followed[0], torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0, 0.0]))
    assert torch.allclose(propagator.applicable(start.batch, start.node, start.value, probs),
                          torch.tensor([[0.25, 0.75, 0.0, 0.0, 0.0, 0.0]]))  # without types: as before
    # only the first hop, whose frontier the question names: a later hop's frontier lacking the
    # reading ("which nation's capital is X", capital-of read again after the country) does not
    # walk on to its neighbours, countries too, but to what it has of the reading
    # 0 city <-capital- 1 country -borders-> 2 country
    capitals = SimpleNamespace(src=np.array([1, 1]), dst=np.array([0, 2]), rel=np.array([0, 1]),
                               num_nodes=3, num_relations=2)
    walker = Propagator(capitals)  # type: ignore[arg-type]
    capital_of = torch.tensor([[1e-4, 1e-6, 1.0 - 1e-4 - 1e-6, 0.0]])
    _hops, followed = walker.run(Sparse(torch.tensor([0]), torch.tensor([0]), torch.tensor([1.0])),
                                 [capital_of, capital_of], slot_types=_slot_types(capitals, torch.tensor([0, 1, 1])))  # type: ignore[arg-type]
    assert torch.allclose(followed[0][0], torch.tensor([0.0, 0.0, 1.0, 0.0]))
    assert followed[1][0][0] > 0.98 and followed[1][0][1] < 0.02  # every hop typed: borders at 1.0
    # node by node: a subregion at 1.0 and its region at 0.03 on a reading neither has (the
    # subregion again): the subregion follows what it has, and only the region's 0.03 goes to
    # the region's one slot that leads to subregions
    mixed = Sparse(torch.tensor([0, 0]), torch.tensor([1, 2]), torch.tensor([1.0, 0.03]))
    again = torch.tensor([[0.99, 0.0, 0.005, 0.0, 0.0, 0.005]])
    followed = propagator.applicable(mixed.batch, mixed.node, mixed.value, again, types)[0]
    assert followed[2] > 0.9 and followed[5] < 0.1 and float(followed.sum()) == pytest.approx(1.0)


def test_a_topic_name_of_several_entities_is_about_the_one_that_has_the_relation_read() -> None:
    """The actor and the tag of one name, each half of the topic: "the movies directed by
    him" are the actor's, at full score, not at half; a question none of whose topic entities
    has the relation keeps its weights; training follows the topic as given."""
    from types import SimpleNamespace

    import numpy as np

    from kqa.retrieve import Propagator, Sparse

    # 0 actor <-directed_by- 2 film -has_tags-> 1 tag; 3 film -has_tags-> 1 tag
    graph = SimpleNamespace(src=np.array([2, 2, 3]), dst=np.array([0, 1, 1]), rel=np.array([0, 1, 1]),
                            num_nodes=4, num_relations=2)
    propagator = Propagator(graph)  # type: ignore[arg-type]
    start = Sparse(torch.tensor([0, 0]), torch.tensor([0, 1]), torch.tensor([0.5, 0.5]))
    directed = torch.tensor([[0.0, 0.0, 1.0, 0.0]])  # slot 2: directed_by backwards
    def reached(hops: list[Sparse]) -> dict[int, float]:
        return {node: v for node, v in hops[1].to_dict(0).items() if v > 0}

    hops, _ = propagator.run(start, [directed])
    assert reached(hops) == pytest.approx({2: 1.0})
    assert hops[0].to_dict(0) == pytest.approx({0: 0.5, 1: 0.5})  # "which entity is this" unchanged
    tagged = torch.tensor([[0.0, 0.0, 0.1, 0.9]])  # mostly has_tags backwards: the tag's films
    hops, _ = propagator.run(start, [tagged])  # the tag now 0.9 of the topic, not 0.5
    assert reached(hops) == pytest.approx({2: 0.89, 3: 0.889}, abs=0.002)
    none = torch.tensor([[1.0, 0.0, 0.0, 0.0]])  # directed_by forwards: neither has it
    assert torch.equal(propagator.readable_topic(start.batch, start.node, start.value, none), start.value)
    hops, _ = propagator.run(start, [directed], applicable=False)
    assert reached(hops) == pytest.approx({2: 0.5})


def test_answering_skips_the_hops_the_hop_count_gives_almost_nothing_to() -> None:
    """A one-hop question costs one step, not three, when the later hops carry under
    ``EPS_INFERENCE`` of the hop count: the answers' scores do not move beyond that."""
    from types import SimpleNamespace

    import numpy as np

    from kqa.retrieve import EPS_INFERENCE, Propagator, Sparse

    # 0 -r0-> 1 -r0-> 2 -r0-> 3
    graph = SimpleNamespace(src=np.array([0, 1, 2]), dst=np.array([1, 2, 3]), rel=np.array([0, 0, 0]),
                            num_nodes=4, num_relations=1)
    propagator = Propagator(graph)  # type: ignore[arg-type]
    start = Sparse(torch.tensor([0]), torch.tensor([0]), torch.tensor([1.0]))
    forward = [torch.tensor([[1.0, 0.0]])] * 3
    faint = EPS_INFERENCE / 4
    hop_probs = torch.tensor([[0.0, 1.0 - 2 * faint, faint, faint]])
    def reached(hops: list[Sparse]) -> list[int]:
        return [int((h.value > 0).sum()) for h in hops]

    full, _ = propagator.run(start, forward)
    skipped, followed = propagator.run(start, forward, hop_probs=hop_probs)
    assert reached(full) == [1, 1, 1, 1]
    assert reached(skipped) == [1, 1, 0, 0] and len(followed) == 3
    assert torch.allclose(propagator.combine(full, hop_probs, 1), propagator.combine(skipped, hop_probs, 1),
                          atol=EPS_INFERENCE)
    # a later hop with more than the line is walked
    walked, _ = propagator.run(start, forward, hop_probs=torch.tensor([[0.0, 0.99, 0.01, 0.0]]))
    assert reached(walked) == [1, 1, 1, 0]


def test_deterministic_training_runs_on_one_thread_and_gives_the_threads_back(
        home: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads sum in a varying order: the same seed gave different countries models from
    the first epoch on, one thread bit-identical ones. ``--deterministic`` trains on one."""
    import kqa.training

    seen: list[int] = []

    class Stop(Exception):
        pass

    def fit(self, train, val):  # type: ignore[no-untyped-def]
        seen.append(torch.get_num_threads())
        raise Stop  # enough: the threads must come back all the same

    monkeypatch.setattr(kqa.training.Trainer, "fit", fit)
    torch.set_num_threads(2)
    for deterministic in (True, False):
        with pytest.raises(Stop):
            kqa.train("films", [home["test"]], out=tmp_path / "m", epochs=1, deterministic=deterministic)
        assert torch.get_num_threads() == 2
    assert seen == [1, 2]
    try:  # the CLI flag reaches training
        main(["train", "--kg", "films", "-q", str(home["test"]), "--out", str(tmp_path / "m"), "--epochs", "1",
              "--deterministic"])
    except (Stop, SystemExit):
        pass
    assert seen == [1, 2, 1] and torch.get_num_threads() == 2


def test_mixed_precision_training_learns(home: dict[str, Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Training's forward passes run under bf16 autocast on CUDA (:func:`kqa.device.autocast`);
    ``KQA_AUTOCAST=cpu`` runs that path here: the sparse propagation must take the half-width
    activations, the model must still learn, and the saved weights stay float32. On a CUDA
    machine training runs there, so the recorded autocast is CUDA's."""
    from safetensors.torch import load_file

    from kqa.device import default_device
    from kqa.model import QAModel

    device = default_device().type
    monkeypatch.setenv("KQA_AUTOCAST", device)
    forward, seen = QAModel.forward, []

    def recording(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(torch.is_autocast_enabled(device))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(QAModel, "forward", recording)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = kqa.train("films", [home["train"]], out=tmp_path / "bf16", epochs=15, seed=0, patience=4)
    finally:
        torch.set_num_threads(threads)
    assert any(seen) and report.val_hits1 >= 0.8
    weights = load_file(str(Path(report.model_dir) / "model.safetensors"))
    assert {w.dtype for w in weights.values()} == {torch.float32}


REFAULT = """
import resource, torch
from kqa.device import default_device, keep_freed_memory
default_device()
for _ in range(3):  # a training loop's steady state: the same 64 MB made and freed
    x = torch.ones(16 * 2**20)
    del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
y = torch.ones(16 * 2**20)
print(keep_freed_memory(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_freed_tensor_memory_is_kept_for_the_next_tensors() -> None:
    """A tensor made again after tensors of its size were freed reuses their memory instead of
    faulting a fresh mapping in page by page (:func:`kqa.device.keep_freed_memory`: 17 % off
    a recogniser epoch); ``KQA_KEEP_MEMORY=0`` leaves the C library's defaults."""
    import os
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the allocator's thresholds are glibc's")

    def faults(keep: str) -> tuple[str, int]:
        env = {**os.environ, "KQA_KEEP_MEMORY": keep}
        out = subprocess.run([sys.executable, "-c", REFAULT], env=env, capture_output=True, text=True,
                             check=True).stdout.split()
        return out[0], int(out[1])

    kept, kept_faults = faults("1")
    default, default_faults = faults("0")
    assert (kept, default) == ("True", "False")
    if default_faults < 4096:  # 64 MB in 4 KB pages is 16,384 faults; huge pages make far fewer
        pytest.skip(f"this machine maps 64 MB in {default_faults} faults either way")
    assert kept_faults < default_faults / 8


MOONS = {"Io": ("Jupiter", "Galileo"), "Europa": ("Jupiter", "Galileo"), "Ganymede": ("Jupiter", "Galileo"),
         "Callisto": ("Jupiter", "Galileo"), "Titan": ("Saturn", "Huygens"), "Phobos": ("Mars", "Hall"),
         "Deimos": ("Mars", "Hall"), "Triton": ("Neptune", "Lassell"), "Titania": ("Uranus", "Herschel"),
         "Oberon": ("Uranus", "Herschel")}
BIRTHPLACES = {"Galileo": "Pisa", "Huygens": "The Hague", "Hall": "Goshen", "Lassell": "Bolton",
               "Herschel": "Hanover"}


def test_a_model_trained_on_a_kg_without_templates_answers_two_hop_questions(tmp_path: Path) -> None:
    """A KG loaded without a pack: its generated questions (:func:`kqa.generate.generic_phrasing`)
    include two-hop ones, so a model trained on them answers held-out two-hop wordings ("name the
    city that the person that discovered Io is born in"); before, it answered them with the first
    hop."""
    from kqa.answer import load_answerer
    from kqa.generate import GenerateConfig, generated_examples

    rows = [f"{m}\torbits\t{p}\n{m}\tdiscovered by\t{d}" for m, (p, d) in MOONS.items()]
    rows += [f"{d}\tborn in\t{c}" for d, c in BIRTHPLACES.items()]
    path = tmp_path / "moons.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    kqa.load_kg(path, "moons")
    kqa.build_index("moons")
    report = kqa.train("moons", generated=True, out=tmp_path / "model", seed=0)
    answerer = load_answerer("moons", Path(report.model_dir))
    held_out = [e for e in generated_examples("moons", GenerateConfig(split="test", seed=1)) if ">" in e.group]
    right = [bool(r.answers) and r.answers[0].node in e.answers for e in held_out for r in [answerer.ask(e.text)]]
    assert len(held_out) >= 20 and sum(right) / len(right) >= 0.7, (sum(right), len(right))
