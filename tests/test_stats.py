import numpy as np
import pytest
from tiny_models import accuracy_history

from course_utils import stats

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
    assert stats.t_critical(2) == 4.303 and stats.t_critical(20) == 2.086 and stats.t_critical(30) == 2.042
    # Más allá de la tabla, la aproximación: t(40) = 2,021, t(120) = 1,980, y tiende a 1,96.
    assert abs(stats.t_critical(40) - 2.021) < 0.002 and abs(stats.t_critical(120) - 1.980) < 0.002
    assert stats.t_critical(31) < stats.t_critical(30) and 1.96 < stats.t_critical(10_000) < 1.961
    with pytest.raises(ValueError, match="grados de libertad"):
        stats.t_critical(0)


def test_t_interval_is_mean_plus_minus_t_standard_error():
    mean, half = stats.t_interval([0.42, 0.55, 0.47])
    assert abs(mean - 0.48) < 1e-12
    assert abs(half - 4.303 * 0.065574 / 3 ** 0.5) < 1e-4   # desviación muestral 0,0656, 2 grados de libertad
    wider = stats.t_interval([0.42, 0.55, 0.47, 0.30, 0.66])[1]
    assert wider > half                                      # más dispersión, aunque haya más semillas
    assert stats.t_interval([0.7])[1] == float("inf")      # una semilla: sin intervalo
    with pytest.raises(ValueError):
        stats.t_interval([])
    with pytest.raises(ValueError):
        stats.t_interval([0.5, float("nan")])
