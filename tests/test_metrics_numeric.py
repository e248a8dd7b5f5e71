"""Regression and ranking metrics against scikit-learn and hand computations; the optional HF plug-in."""

import math

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, ndcg_score, r2_score

from genval.errors import GenvalError
from genval.metrics import numeric, plugins
from genval.metrics.corpus import corpus_numbers
from genval.metrics.registry import MetricContext
from tests.conftest import score_frames


def test_regression_matches_sklearn():
    cands = ["3.5", "The answer is 2", "-1e1", "no idea", "7"]
    others = ["3", "2", "-8", "5", "10"]
    segments = [("student~reference", 0, 5)]
    result = numeric.regression(cands, others, MetricContext(task="x", segments=segments))
    assert result.values["abs_error"][:3] == [0.5, 0.0, 2.0] and math.isnan(result.values["abs_error"][3])
    assert result.details["abs_error"][3] == "no number could be read"
    pred, gold = [3.5, 2, -10, 7], [3, 2, -8, 10]
    s = corpus_numbers(score_frames(result, segments, batch=2))["student~reference"]["regression"]
    assert s["n"] == 4
    assert s["mae"] == pytest.approx(mean_absolute_error(gold, pred))
    assert s["rmse"] == pytest.approx(math.sqrt(mean_squared_error(gold, pred)))
    assert s["r2"] == pytest.approx(r2_score(gold, pred))


def test_regression_corpus_numbers_do_not_depend_on_the_batches():
    rng = np.random.default_rng(5)
    gold = rng.normal(1000.0, 3.0, 500)  # a large mean and a small spread: a naive Σx² − (Σx)²/n would lose R²
    pred = gold + rng.normal(0.0, 1.0, 500)
    segments = [("p", 0, 500)]
    result = numeric.regression([repr(float(v)) for v in pred], [repr(float(v)) for v in gold], MetricContext(task="x", segments=segments))
    for batch in (1, 7, 500):
        s = corpus_numbers(score_frames(result, segments, batch=batch))["p"]["regression"]
        assert s["n"] == 500 and s["mae"] == pytest.approx(mean_absolute_error(gold, pred), rel=1e-12)
        assert s["rmse"] == pytest.approx(math.sqrt(mean_squared_error(gold, pred)), rel=1e-12)
        assert s["r2"] == pytest.approx(r2_score(gold, pred), rel=1e-9)


def test_ndcg_matches_sklearn_with_graded_relevance():
    items = ["a", "b", "c", "d", "e"]
    relevance = {"a": 3, "b": 0, "c": 2, "d": 1, "e": 0}
    ranking = ["b", "a", "d", "c", "e"]
    # sklearn scores items; give the ranked list descending scores
    scores = [[len(ranking) - ranking.index(i) for i in items]]
    true = [[relevance[i] for i in items]]
    for k in (1, 3, 5):
        assert numeric.ndcg_at_k(ranking, relevance, k) == pytest.approx(ndcg_score(true, scores, k=k))


def test_average_precision_by_hand():
    # relevant {a, c, x}; ranked a, b, c: P@1 = 1, P@3 = 2/3; x never retrieved → AP = (1 + 2/3) / 3
    assert numeric.average_precision(["a", "b", "c"], {"a", "c", "x"}) == pytest.approx((1 + 2 / 3) / 3)
    assert numeric.average_precision(["a"], set()) is None


def test_ranking_metric_reads_json_and_lines():
    result = numeric.ranking(['["a", "b"]', "b\na"], ['{"a": 1}', '["a"]'], MetricContext(task="x", options={"k": 2}))
    assert result.values["ndcg@2"] == pytest.approx([1.0, 1 / math.log2(3)])
    assert result.values["average_precision"] == pytest.approx([1.0, 0.5])


def test_hf_evaluate_plugin_errors_clearly():
    with pytest.raises(GenvalError, match="give 'metric"):
        plugins.hf_evaluate(["a"], ["a"], MetricContext(task="x"))
    try:
        import evaluate  # noqa: F401
    except ImportError:
        with pytest.raises(GenvalError, match="not installed"):
            plugins.hf_evaluate(["a"], ["a"], MetricContext(task="x", options={"metric": "bleu"}))
    else:
        with pytest.raises(GenvalError, match="cannot load"):
            plugins.hf_evaluate(["a"], ["a"], MetricContext(task="x", options={"metric": "/no/such/metric/dir"}))
