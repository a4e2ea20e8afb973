"""Aumento de datos: cada transformación hace lo que dice, conserva la etiqueta y falla con mensajes claros."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from course_utils import augment, glyphnet, offline, plots

RATE = 8_000


def tiny_images(n=4, size=12):
    torch.manual_seed(0)
    return torch.rand(n, 3, size, size)


# --------------------------------------------------------------------------------------
# Imágenes
# --------------------------------------------------------------------------------------


def test_transform_dataset_changes_the_image_but_keeps_the_label():
    x, y = tiny_images(), torch.tensor([3, 1, 4, 1])
    data = augment.TransformDataset(TensorDataset(x, y), lambda image: 1 - image)
    assert len(data) == 4
    for i in range(4):
        image, label = data[i]
        assert label == y[i]
        assert torch.allclose(image, 1 - x[i])


def test_transform_dataset_draws_new_parameters_for_each_read():
    x, y = tiny_images(1, 16), torch.tensor([0])
    data = augment.TransformDataset(TensorDataset(x, y), augment.mild_augmentation())
    torch.manual_seed(0)
    first, second = data[0][0], data[0][0]
    assert first.shape == x[0].shape and not torch.equal(first, second)


def test_transform_dataset_rejects_something_that_is_not_callable():
    with pytest.raises(ValueError, match="transform"):
        augment.TransformDataset(TensorDataset(tiny_images(), torch.zeros(4)), "volteo")


def test_gallery_flip_really_mirrors_and_the_others_keep_the_shape():
    image = tiny_images(1, 16)[0]
    gallery = augment.augmentation_gallery(16)
    assert torch.equal(gallery["volteo horizontal"](image), image.flip(-1))
    torch.manual_seed(0)
    for name, transform in gallery.items():
        out = transform(image)
        assert out.shape == image.shape, name
        assert 0 <= out.min() and out.max() <= 1, name
        if name != "volteo horizontal":  # las aleatorias cambian la imagen (al menos una de tres veces)
            assert any(not torch.equal(transform(image), image) for _ in range(3)), name


def test_gaussian_noise_has_the_requested_deviation():
    grey = torch.full((3, 64, 64), 0.5)
    torch.manual_seed(0)
    noisy = augment.GaussianNoise(0.1)(grey)
    assert abs(float((noisy - grey).std()) - 0.1) < 0.01
    with pytest.raises(ValueError, match="std"):
        augment.GaussianNoise(-0.1)


def test_explorer_transform_with_neutral_values_is_the_identity():
    image = tiny_images(1, 16)[0]
    assert torch.equal(augment.explorer_transform()(image), image)
    assert torch.equal(augment.explorer_transform(flip=True)(image), image.flip(-1))
    shifted = augment.explorer_transform(translate=0.25)(image)
    assert torch.allclose(shifted[..., 4:, 4:], image[..., :-4, :-4], atol=1e-5)  # 16 · 0.25 = 4 píxeles a la derecha y abajo
    noisy = augment.explorer_transform(noise=0.1)
    assert torch.equal(noisy(image), noisy(image))  # mismo ruido cada vez: el explorador no parpadea


@pytest.mark.parametrize("kwargs", [{"zoom": 0}, {"brightness": -1}, {"noise": -0.1}])
def test_explorer_transform_rejects_bad_values_in_spanish(kwargs):
    with pytest.raises(ValueError, match="debe ser"):
        augment.explorer_transform(**kwargs)


def test_mild_augmentation_rejects_rotations_that_change_digits():
    with pytest.raises(ValueError, match="6 y 9"):
        augment.mild_augmentation(degrees=180)


def test_sample_photo_is_a_real_square_photo():
    photo = augment.sample_photo(size=32)
    assert photo.shape == (3, 32, 32) and photo.dtype == torch.float32
    assert 0 <= photo.min() and photo.max() <= 1 and photo.std() > 0.1
    image, description = augment.example_photo(None, size=32)
    assert torch.equal(image, photo) and "matplotlib" in description
    with pytest.raises(ValueError, match="size"):
        augment.sample_photo(size=2)


def test_train_with_gap_measures_clean_train_and_test_each_epoch():
    x, y = offline.generate("similar", 2, "train", 0)
    data = DataLoader(TensorDataset(offline.normalize(x), y), batch_size=10)
    model = glyphnet.GlyphNet(10, widths=(4, 8, 8))
    result = augment.train_with_gap(model, data, data, data, epochs=2,
                                    optimizer=torch.optim.Adam(model.parameters(), lr=1e-2))
    assert result["epoch"] == [1, 2]
    assert result["train_acc"] == result["test_acc"]  # mismo cargador en los dos papeles
    assert result["gap"] == [0.0, 0.0]
    fig = plots.plot_gap({"sin aumento": [result, result], "con aumento": [result, result]})
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "diferencia de exactitud"
    with pytest.raises(ValueError, match="mismas semillas"):
        plots.plot_gap({"sin aumento": [result], "con aumento": [result, result]})


def test_train_with_gap_can_measure_every_few_epochs_and_always_after_the_last():
    x, y = offline.generate("similar", 1, "train", 0)
    data = DataLoader(TensorDataset(offline.normalize(x), y), batch_size=10)
    model = glyphnet.GlyphNet(10, widths=(4, 8, 8))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    result = augment.train_with_gap(model, data, data, data, epochs=5, optimizer=optimizer, every=2)
    assert result["epoch"] == [2, 4, 5]
    with pytest.raises(ValueError, match="every"):
        augment.train_with_gap(model, data, data, data, epochs=1, optimizer=optimizer, every=0)


# --------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------


def tone(freq=440.0, seconds=0.5):
    return augment.synth_melody((freq,), note_seconds=seconds, sample_rate=RATE)


def test_pitch_shift_changes_the_dominant_frequency_by_the_right_ratio_and_keeps_the_length():
    wave = tone(440.0)
    assert abs(augment.dominant_frequency(wave, RATE) - 440) < 5
    for semitones in (12, 4, -5):
        shifted = augment.change_pitch(wave, semitones, RATE)
        assert len(shifted) == len(wave)
        ratio = augment.dominant_frequency(shifted, RATE) / 440
        assert abs(ratio - 2 ** (semitones / 12)) < 0.02, semitones


def test_speed_change_changes_length_and_pitch_together():
    wave = tone(440.0)
    fast = augment.change_speed(wave, 1.25)
    assert abs(len(fast) - len(wave) / 1.25) <= 1
    assert abs(augment.dominant_frequency(fast, RATE) / 440 - 1.25) < 0.02
    slow = augment.change_speed(wave, 0.8)
    assert abs(len(slow) - len(wave) / 0.8) <= 2


def test_speed_and_pitch_changes_add_no_false_frequencies():
    """Ninguna raya falsa en el espectrograma: fuera del tono esperado, 60 dB por debajo (interpolar en línea
    recta dejaba una a −24 dB)."""
    t = np.arange(4000) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 1500 * t) * np.hanning(len(t))).astype(np.float32)
    for wave, expected in ((augment.change_speed(tone, 1.25), 1875), (augment.change_pitch(tone, 4, RATE), 1890)):
        power = np.abs(np.fft.rfft(wave * np.hanning(len(wave)))) ** 2
        freqs = np.fft.rfftfreq(len(wave), 1 / RATE)
        assert 10 * np.log10(power[np.abs(freqs - expected) > 250].max() / power.max()) < -60


def test_melody_notes_fade_in_and_out_without_clicks():
    wave = augment.synth_melody(note_seconds=0.35, sample_rate=RATE)
    boundaries = [round(0.35 * RATE) * k for k in (1, 2, 3)]
    assert abs(wave[0]) < 0.01 and abs(wave[-1]) < 0.01
    assert all(np.abs(wave[b - 8 : b + 8]).max() < 0.01 for b in boundaries)  # sin saltos entre notas: sin clics
    assert np.abs(wave).max() == pytest.approx(0.8)


def test_added_noise_has_roughly_the_requested_snr_and_is_reproducible():
    wave = augment.synth_melody(sample_rate=RATE)
    noisy = augment.add_noise(wave, snr_db=20, seed=1)
    assert abs(augment.snr_db(wave, noisy) - 20) < 0.5
    assert np.array_equal(noisy, augment.add_noise(wave, snr_db=20, seed=1))
    assert not np.array_equal(noisy, augment.add_noise(wave, snr_db=20, seed=2))


def test_spectrogram_peaks_at_the_tone_frequency():
    times, freqs, db = augment.spectrogram(tone(1000.0), RATE, window=256, hop=64)
    assert db.shape == (len(freqs), len(times))
    assert abs(freqs[db.mean(axis=1).argmax()] - 1000) <= RATE / 256
    fig = plots.plot_spectrograms({"tono": tone(1000.0)}, RATE)
    assert fig.axes[0].get_xlabel() == "tiempo (s)" and fig.axes[0].get_ylabel() == "frecuencia (Hz)"


@pytest.mark.parametrize("call, words", [
    (lambda w: augment.change_speed(w, 0), "factor"),
    (lambda w: augment.change_pitch(w, 48), "semitones"),
    (lambda w: augment.add_noise(w, snr_db=500), "snr_db"),
    (lambda w: augment.change_pitch(np.zeros((2, 10)), 2), "mono"),
    (lambda w: augment.spectrogram(w, RATE, window=10, hop=20), "hop"),
    (lambda w: augment.synth_melody(()), "nota"),
    (lambda w: augment.snr_db(w, w[:-1]), "longitud"),
])
def test_bad_audio_arguments_raise_spanish_errors(call, words):
    with pytest.raises(ValueError, match=words):
        call(tone())


def test_gallery_uses_its_own_seed_and_leaves_the_global_generator_alone():
    photo = augment.sample_photo(size=24)
    gallery = {"giro": augment.augmentation_gallery(24)["rotación"]}
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = plots.plot_gallery(photo, gallery, samples=2, seed=5)
    assert torch.equal(torch.rand(3), expected), "dibujar la galería no debe cambiar lo que torch.rand da después"
    second = plots.plot_gallery(photo, gallery, samples=2, seed=5)
    same = [ax.images[0].get_array() for ax in first.axes[1:]], [ax.images[0].get_array() for ax in second.axes[1:]]
    assert all(np.array_equal(a, b) for a, b in zip(*same)), "con la misma semilla, las mismas versiones"
