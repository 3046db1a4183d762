import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from custodes.triage.metrics import average_precision, recall_at_fraction, roc_auc

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: nothing here uses a database


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200) + 0.3 * y, 1)  # rounded: many ties
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    s2 = rng.random(200) + 0.3 * y  # average precision without ties matches exactly
    assert average_precision(y, s2) == pytest.approx(average_precision_score(y, s2))


def test_recall_at_fraction():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.1, 0, 0, 0, 0, 0, 0, 0.2])
    assert recall_at_fraction(y, s, 0.10) == pytest.approx(1 / 3)
    assert recall_at_fraction(y, s, 0.30) == pytest.approx(2 / 3)
