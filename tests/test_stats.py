import numpy as np
import pytest

from course_utils import stats
from tiny_models import accuracy_history


history = accuracy_history  # una ejecución: test_acc por época


def test_summaries_mean_std_and_paired_gaps():
    assert stats.mean_std([1.0, 3.0]) == pytest.approx((2.0, 2 ** 0.5))
    assert stats.mean_std([0.7]) == (0.7, 0.0)
    with pytest.raises(ValueError, match="al menos una"):
        stats.mean_std([])
    assert stats.fmt(0.9712, 0.0123) == "0.97 ± 0.01"
    s = stats.summarize([history([0.2, 0.6]), history([0.4, 0.8])])
    assert s.mean == pytest.approx([0.3, 0.7]) and s.n == 2
    assert s.start == pytest.approx((0.3, 0.02 ** 0.5)) and s.final[0] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="épocas"):
        stats.summarize([history([0.1]), history([0.1, 0.2])])
    with pytest.raises(ValueError, match="lista"):
        stats.summarize(history([0.1]))
    assert stats.final_values([history([0.2, 0.6]), [0.1, 0.3]]) == pytest.approx([0.6, 0.3])
    adv = stats.paired_advantages([[0.8, 0.9, 1.0, 1.0]], [[0.1, 0.2, 0.4, 0.6]])
    assert adv["start"] == pytest.approx([0.7]) and adv["asymptote"] == pytest.approx([0.5])
    with pytest.raises(ValueError, match="empareja"):
        stats.paired_advantages([[0.8], [0.9]], [[0.1]])


def test_transfer_advantages_numbers():
    baseline = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # pendiente 0.1/época, asíntota 0.55
    curve = [0.5, 0.8, 0.9, 0.9, 0.95, 0.95]  # primera mitad: épocas 1..3 -> (0.9-0.5)/2 = 0.2
    assert stats.transfer_advantages(curve, baseline) == pytest.approx({"start": 0.4, "slope": 0.1, "asymptote": 0.40})
    assert stats.transfer_advantages(baseline, baseline) == pytest.approx({"start": 0, "slope": 0, "asymptote": 0})
    assert stats.transfer_advantages(baseline, curve)["start"] == pytest.approx(-0.4)
    assert stats.transfer_advantages([0.5, 0.9], [0.1, 0.2])["slope"] == pytest.approx(0.3)
    assert np.isnan(stats.transfer_advantages([0.5], [0.1])["slope"])
    with pytest.raises(ValueError, match="no son finitos"):
        stats.transfer_advantages([0.5, float("nan")], [0.1, 0.2])
    with pytest.raises(ValueError, match="vacía"):
        stats.transfer_advantages([], [0.1])


def test_t_critical():
    assert stats.t_critical(2) == 4.303 and stats.t_critical(20) == 2.042 and stats.t_critical(100) == 1.96
    with pytest.raises(ValueError, match="grados de libertad"):
        stats.t_critical(0)
