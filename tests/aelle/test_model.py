from pathlib import Path

import numpy as np
import pytest

from aelle.classifiers import good_mask, scores
from aelle.model import AeLLE, AeLLEConfig, AlphaSchedule, SpectrumPCA, interpolate

FAST = AeLLEConfig(dim=32, hidden=(32, 16), latent=8, epochs=150, warmup_epochs=40,
                   ramp_epochs=40, components=4)


def population(n, seed=0, sizes=(16, 24, 40)):
    """Spectra whose slope sets the loss (plus noise); networks of several sizes."""
    rng = np.random.default_rng(seed)
    quality = rng.uniform(0, 1, n)
    spectra = []
    for i in range(n):
        k = sizes[i % len(sizes)]
        x = np.linspace(0, 1, k)
        spectra.append(0.05 - (0.3 + quality[i]) * x + 0.02 * rng.standard_normal(k))
    return spectra, 1.0 + 2.0 * quality + 0.1 * rng.standard_normal(n)


@pytest.fixture(scope="module")
def fitted():
    spectra, loss = population(300)
    model = AeLLE(FAST).fit(spectra[:200], loss[:200])
    model.calibrate(spectra[:200], good_mask(loss[:200]), orthants=(1, 2))
    return model, spectra, loss


def test_interpolate_sorts_keeps_ends_and_is_linear():
    out = interpolate([[1.0, 3.0, 2.0], [5.0]], 5)
    np.testing.assert_allclose(out[0], [3.0, 2.5, 2.0, 1.5, 1.0])
    np.testing.assert_allclose(out[1], 5.0)


@pytest.mark.parametrize("spectra, dim, message", [
    ([], 8, "no spectra"),
    ([[1.0, np.nan]], 8, "non-finite"),
    ([[]], 8, "non-empty"),
    ([[1.0, 2.0]], 1, "dim"),
])
def test_interpolate_rejects_bad_input(spectra, dim, message):
    with pytest.raises(ValueError, match=message):
        interpolate(spectra, dim)


def test_shapes(fitted):
    model, spectra, _ = fitted
    some = spectra[200:210]
    assert model.latent(some).shape == (10, FAST.latent)
    assert model.embed(some).shape == (10, FAST.components)
    assert model.embed(some, components=2).shape == (10, 2)
    assert model.predict(some).shape == (10,)
    assert model.reconstruct(some).shape == (10, FAST.dim)
    assert model.classify(some, "orthant2").dtype == bool


def test_finds_the_separating_feature(fitted):
    model, spectra, loss = fitted
    test = slice(200, None)
    assert np.corrcoef(model.predict(spectra[test]), loss[test])[0, 1] > 0.8
    good = good_mask(loss[test], np.median(loss[:200]))
    for name in ("pc1", "pc1_f1", "orthant1"):
        assert scores(model.classify(spectra[test], name), good).f1 > 0.8, name
    # PC1 is oriented to grow with the predicted loss
    pc1 = model.embed(spectra[test])[:, 0]
    assert np.corrcoef(pc1, model.predict(spectra[test]))[0, 1] > 0


def test_shuffled_labels_give_chance():
    spectra, loss = population(400, seed=1)
    shuffled = np.random.default_rng(2).permutation(loss)
    model = AeLLE(FAST).fit(spectra[:200], shuffled[:200])
    model.calibrate(spectra[:200], good_mask(shuffled[:200]))
    good = good_mask(shuffled[200:], np.median(shuffled[:200]))
    f1 = scores(model.classify(spectra[200:], "pc1"), good).f1
    assert 0.3 < f1 < 0.7
    assert abs(np.corrcoef(model.predict(spectra[200:]), shuffled[200:])[0, 1]) < 0.25


def test_round_trip_through_bytes(fitted):
    model, spectra, _ = fitted
    data = model.to_bytes()
    back = AeLLE.from_bytes(data)
    some = spectra[200:240]
    np.testing.assert_array_equal(back.predict(some), model.predict(some))
    np.testing.assert_array_equal(back.embed(some), model.embed(some))
    for name in model.classifiers:
        np.testing.assert_array_equal(back.classify(some, name), model.classify(some, name))
    assert back.version == model.version
    assert back.config == model.config
    assert back.n_train == 200


def test_a_model_saved_in_format_1_loads_and_saves_to_the_same_bytes():
    # saved by an earlier version of the code: dim 8, hidden (6,), latent 3, two orthants
    data = (Path(__file__).parent / "data" / "aelle_format1.pt").read_bytes()
    model = AeLLE.from_bytes(data)
    assert model.to_bytes() == data
    assert model.version == "29209b43c2e1"
    probe = [0.05 - 0.7 * np.linspace(0, 1, 7), 0.0 - 0.4 * np.linspace(0, 1, 5)]
    np.testing.assert_allclose(model.predict(probe), [1.7284881731421329, 2.548853136037219],
                               rtol=1e-6)
    np.testing.assert_allclose(model.embed(probe),
                               [[-0.6310862386822447, -0.02863380009940122, 0.0018235278918806],
                                [0.7844254030880163, 0.36571141289351494, -0.5972956699367478]],
                               rtol=1e-6, atol=1e-7)
    assert sorted(model.classifiers) == ["orthant1", "orthant2", "pc1", "pc1_f1"]
    assert all(model.classify(probe, name).tolist() == [True, False] for name in model.classifiers)


def test_loading_garbage_or_another_format_fails_clearly(fitted, monkeypatch):
    with pytest.raises(ValueError, match="not a saved AeLLE model"):
        AeLLE.from_bytes(b"not a model")
    import aelle.model as m

    data = fitted[0].to_bytes()
    monkeypatch.setattr(m, "FORMAT_VERSION", 99)
    with pytest.raises(ValueError, match="format 1"):
        AeLLE.from_bytes(data)


def test_log_target_when_losses_span_decades():
    spectra, loss = population(60, seed=3)
    decades = 10.0 ** (-3 + 2 * (loss - 1.0))  # 1e-3 .. 1e1
    model = AeLLE(FAST).fit(spectra, decades)
    assert model.normalisation.t_log
    assert (model.predict(spectra) > 0).all()
    assert not AeLLE(FAST).fit(spectra, loss).normalisation.t_log


def test_exploded_losses_do_not_drown_the_ranking_of_the_rest():
    spectra, loss = population(200, seed=4)
    blown = loss.copy()
    blown[::10] = 1e8 * (1.0 + loss[::10])  # 10 % of the networks ended with an exploded loss
    model = AeLLE(FAST).fit(spectra[:150], blown[:150])
    rest = np.arange(150, 200)
    sane = rest[rest % 10 != 0]
    assert np.corrcoef(model.predict([spectra[i] for i in sane]), loss[sane])[0, 1] > 0.8
    # the target scale comes from the interquartile range of the ordinary losses (log 1..3),
    # not from the spread the exploded ones would give a standard deviation (about 6)
    assert model.normalisation.t_log and model.normalisation.t_scale < 0.5


def test_unfitted_model_and_bad_training_input_are_refused():
    with pytest.raises(RuntimeError, match="not been fitted"):
        AeLLE(FAST).predict([[0.0, -1.0]])
    with pytest.raises(ValueError, match="3 spectra but 2 targets"):
        AeLLE(FAST).fit([[0.0]] * 3, [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        AeLLE(FAST).fit([[0.0]] * 4, [1.0, 2.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="at least 4"):
        AeLLE(FAST).fit([[0.0]] * 3, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("kw, message", [
    ({"dim": 1}, "dim"), ({"latent": 0}, "latent"), ({"hidden": (0,)}, "hidden"),
    ({"dropout": 1.0}, "dropout"), ({"lr": -1.0}, "lr"), ({"target_norm": "l3"}, "target_norm"),
    ({"log_target": "yes"}, "log_target"), ({"warmup_epochs": -1}, "warmup_epochs"),
    ({"max_spectra": 3}, "max_spectra"), ({"max_spectra": 2.5}, "max_spectra"),
])
def test_config_is_validated(kw, message):
    with pytest.raises(ValueError, match=message):
        AeLLEConfig(**kw)
    with pytest.raises(ValueError, match="unknown AeLLE setting"):
        AeLLEConfig.from_dict({"depth": 3})


def test_a_fit_on_more_spectra_than_max_spectra_uses_a_seeded_sample():
    spectra, loss = population(60)
    cfg = AeLLEConfig(**{**FAST.__dict__, "epochs": 5, "warmup_epochs": 2, "ramp_epochs": 2,
                         "max_spectra": 20})
    a, b = AeLLE(cfg).fit(spectra, loss), AeLLE(cfg).fit(spectra, loss)
    assert a.n_train == 20 and a.version == b.version  # bounded, and the same sample each time
    everything = AeLLE(AeLLEConfig(**{**cfg.__dict__, "max_spectra": None})).fit(spectra, loss)
    assert everything.n_train == 60


def test_alpha_waits_for_the_reconstruction_then_ramps():
    s = AlphaSchedule(alpha=2.0, warmup=100, ramp=4, window=3, tol=0.01)
    improving = [1.0 / (e + 1) for e in range(10)]
    assert all(s.step(loss) == 0.0 for loss in improving)
    # the run ended at 0.1; three epochs without a 1 % improvement on it start the ramp
    alphas = [s.step(0.1) for _ in range(7)]
    assert alphas == [0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    assert s.ramp_started == 13


def test_alpha_ramps_after_warmup_even_while_improving():
    s = AlphaSchedule(alpha=1.0, warmup=5, ramp=0, window=2, tol=0.01)
    alphas = [s.step(1.0 / (e + 1)) for e in range(7)]
    assert alphas == [0, 0, 0, 0, 1.0, 1.0, 1.0]
    assert s.ramp_started == 5


def test_training_follows_the_schedule(fitted):
    model = fitted[0]
    h = model.history
    start = h.ramp_started
    assert start is not None and start <= FAST.warmup_epochs
    assert h.alpha[:start] == [0.0] * start and h.alpha[-1] == FAST.alpha
    assert h.recon[-1] < h.recon[0]


def test_raw_spectrum_pca_orders_by_the_main_variation():
    spectra, loss = population(100)
    pc1 = SpectrumPCA(spectra, dim=32).transform(spectra)[:, 0]
    assert abs(np.corrcoef(pc1, loss)[0, 1]) > 0.8
