"""AeLLE: an autoencoder on Lyapunov spectra whose latent space predicts a network's loss
(Chapter 3, Eq. 3.6).

A spectrum Z (sorted, interpolated linearly to D points so networks of any size share a model)
is encoded to a latent L = φ(Z), decoded back to Ẑ = ψ(L), and a *linear* head predicts the loss
T̂ = ξ(L). Training minimises ‖Z − Ẑ‖² + α‖T − T̂‖_l, with α held at zero until the
reconstruction has converged and then ramped up (too large an α from the start makes both
diverge). Inputs are centred per position and scaled by one global factor; targets are
standardised per fit, after a log where the losses span decades.

After training, PCA of the latent vectors gives the AeLLE embedding (PC1 oriented so that it
grows with the predicted loss). A model is saved and loaded as bytes: weights, D, the
normalisations, the PCA and any fitted classifiers, with a format version.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import Tensor, nn

from aelle.classifiers import Classifier, Orthant, Threshold, classifier_from_state
from aelle.validate import check_choice, check_int, check_number

FORMAT_VERSION = 1


def interpolate(spectra: Sequence[Sequence[float]] | np.ndarray, dim: int) -> np.ndarray:
    """(n, dim): each spectrum sorted in descending order and interpolated linearly to ``dim``
    points (its first and last exponents are kept; lengths may differ between spectra)."""
    check_int("dim", dim, low=2)
    rows = list(spectra)
    if not rows:
        raise ValueError("no spectra given")
    out = np.empty((len(rows), dim))
    grid = np.linspace(0.0, 1.0, dim)
    for i, row in enumerate(rows):
        z = np.asarray(row, dtype=np.float64)
        if z.ndim != 1 or z.size == 0:
            raise ValueError(f"spectrum {i} must be a non-empty 1-D sequence, got shape {z.shape}")
        if not np.isfinite(z).all():
            raise ValueError(f"spectrum {i} has non-finite exponents")
        z = np.sort(z)[::-1]
        out[i] = z[0] if z.size == 1 else np.interp(grid, np.linspace(0.0, 1.0, z.size), z)
    return out


@dataclass(frozen=True)
class AeLLEConfig:
    """The published code used D = 1024 -> 128 -> 64 -> latent 32, tanh, dropout 0.1, Adam 1e-3.

    alpha: the prediction weight reached at the end of the ramp; ``warmup_epochs``: the most
    epochs of reconstruction alone (fewer when its loss stops improving by ``plateau_tol``
    over ``plateau_window`` epochs); ``ramp_epochs``: from 0 to ``alpha``.
    target_norm: "l1" or "l2". log_target: "auto" (log when positive losses span more than a
    factor ``log_span``), True or False. Targets are centred on their median and scaled by
    their interquartile range, then clipped to ``target_clip`` such units: a network whose
    loss exploded is "very bad", not a point that squashes every other target together.
    max_spectra: fit on at most this many spectra, drawn without replacement (seeded) when a
    study has more: a fit's time grows with its spectra, and a study of a thousand trials must
    not refit for many minutes; None: all."""

    dim: int = 256
    hidden: tuple[int, ...] = (128, 64)
    latent: int = 32
    dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 300
    batch_size: int = 64
    alpha: float = 2.0
    warmup_epochs: int = 100
    plateau_window: int = 20
    plateau_tol: float = 0.01
    ramp_epochs: int = 100
    target_norm: str = "l1"
    log_target: bool | str = "auto"
    log_span: float = 10.0
    target_clip: float = 3.0
    components: int = 10
    seed: int = 0
    max_spectra: int | None = 4096

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden))
        check_int("dim", self.dim, low=2)
        for name in ("latent", "epochs", "batch_size", "plateau_window", "components"):
            check_int(name, getattr(self, name), low=1)
        if not self.hidden:
            raise ValueError("hidden must hold at least one width, but got hidden=()")
        for i, width in enumerate(self.hidden):
            check_int(f"hidden[{i}]", width, low=1)
        check_int("max_spectra", self.max_spectra, low=4, optional=True)
        for name in ("warmup_epochs", "ramp_epochs", "seed"):
            check_int(name, getattr(self, name), low=0)
        check_number("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        for name in ("lr", "alpha", "log_span", "target_clip"):
            check_number(name, getattr(self, name), low=0.0, low_open=True)
        for name in ("weight_decay", "plateau_tol"):
            check_number(name, getattr(self, name), low=0.0)
        check_choice("target_norm", self.target_norm, ("l1", "l2"))
        check_choice("log_target", self.log_target, (True, False, "auto"))

    @classmethod
    def from_dict(cls, values: dict) -> AeLLEConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown AeLLE setting(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


class AlphaSchedule:
    """α per training epoch: 0 while the reconstruction improves (at most ``warmup`` epochs),
    then a linear ramp to ``alpha`` over ``ramp`` epochs, then held."""

    def __init__(self, alpha: float, warmup: int, ramp: int, window: int, tol: float):
        self.alpha, self.warmup, self.ramp, self.window, self.tol = alpha, warmup, ramp, window, tol
        self.history: list[float] = []
        self.ramp_started: int | None = None  # the epoch α first became non-zero

    def converged(self) -> bool:
        """The reconstruction loss improved by less than ``tol`` (relative) over the window."""
        h = self.history
        if len(h) <= self.window:
            return False
        before, now = min(h[:-self.window]), min(h[-self.window:])
        return now > before * (1.0 - self.tol)

    def step(self, recon_loss: float) -> float:
        """Record this epoch's reconstruction loss; α for the next epoch."""
        self.history.append(float(recon_loss))
        epoch = len(self.history)
        if self.ramp_started is None and (epoch >= self.warmup or self.converged()):
            self.ramp_started = epoch
        if self.ramp_started is None:
            return 0.0
        if self.ramp == 0:
            return self.alpha
        return self.alpha * min(1.0, (epoch - self.ramp_started + 1) / self.ramp)


def _f32(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _mlp(widths: list[int], dropout: float) -> nn.Sequential:
    """Linear layers through ``widths``, tanh and dropout between them, none after the last."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.Tanh(), nn.Dropout(dropout)]
    return nn.Sequential(*layers[:-2])


class Autoencoder(nn.Module):
    def __init__(self, cfg: AeLLEConfig):
        super().__init__()
        widths = [cfg.dim, *cfg.hidden, cfg.latent]
        self.encoder = _mlp(widths, cfg.dropout)
        self.decoder = _mlp(widths[::-1], cfg.dropout)
        self.head = nn.Linear(cfg.latent, 1)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # (B, D)
        latent = self.encoder(z)                                       # (B, latent)
        return latent, self.decoder(latent), self.head(latent).squeeze(-1)  # (B, D), (B,)


@dataclass
class FitHistory:
    recon: list[float] = field(default_factory=list)
    predict: list[float] = field(default_factory=list)
    alpha: list[float] = field(default_factory=list)
    ramp_started: int | None = None
    seconds: float = 0.0


class _Saved:
    """A frozen dataclass saved as one entry per field, named ``prefix`` + the field's name:
    arrays as tensors (``torch.load(weights_only=True)`` reads them), scalars as they are."""

    prefix: ClassVar[str] = ""

    def saved(self) -> dict:
        return {self.prefix + f.name: _saved_value(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_saved(cls, state: dict):
        return cls(**{f.name: _loaded_value(state[cls.prefix + f.name]) for f in fields(cls)})


def _saved_value(value):
    return torch.from_numpy(value) if isinstance(value, np.ndarray) else value


def _loaded_value(value):
    return value.numpy() if isinstance(value, Tensor) else value


@dataclass(frozen=True, eq=False)
class _Normalisation(_Saved):
    """How spectra and targets are scaled for the network, fitted on the training set.

    Spectra are centred per position and divided by their spread per position. Targets are
    log-transformed when ``t_log``, centred on ``t_mean`` and divided by ``t_scale``."""

    z_mean: np.ndarray   # (D,)
    z_scale: np.ndarray  # (D,)
    t_log: bool
    t_mean: float
    t_scale: float

    @classmethod
    def fit(cls, z: np.ndarray, t: np.ndarray, config: AeLLEConfig) -> _Normalisation:
        # per position: the leading exponents vary far less than the trailing ones, and they
        # carry most of what predicts the loss (max LE alone is a strong baseline)
        spread = z.std(0)
        log = config.log_target
        if log == "auto":
            log = bool((t > 0).all() and t.max() / t.min() > config.log_span)
        if log and not (t > 0).all():
            raise ValueError("log_target needs positive targets")
        tt = np.log(t) if log else t
        # robust: a few networks that blew up (losses of 1e8) must not squash the rest together
        q1, med, q3 = np.percentile(tt, [25, 50, 75])
        scale = (q3 - q1) / 1.349 or float(tt.std())  # the IQR of a unit normal is 1.349
        return cls(z_mean=z.mean(0), z_scale=spread + max(1e-3 * float(spread.mean()), 1e-12),
                   t_log=bool(log), t_mean=float(med), t_scale=float(scale) or 1.0)

    def spectra(self, z: np.ndarray) -> np.ndarray:
        return (z - self.z_mean) / self.z_scale

    def spectra_back(self, zn: np.ndarray) -> np.ndarray:
        return zn * self.z_scale + self.z_mean

    def targets(self, t: np.ndarray, clip: float) -> np.ndarray:
        tn = ((np.log(t) if self.t_log else t) - self.t_mean) / self.t_scale
        return np.clip(tn, -clip, clip)

    def targets_back(self, tn: np.ndarray) -> np.ndarray:
        tt = tn * self.t_scale + self.t_mean
        return np.exp(tt) if self.t_log else tt


@dataclass(frozen=True, eq=False)
class _Embedding(_Saved):
    """The PCA of the training set's latent vectors, every component oriented so that it grows
    with the predicted loss."""

    prefix: ClassVar[str] = "pca_"

    mean: np.ndarray        # (latent,)
    components: np.ndarray  # (k, latent)
    variance: np.ndarray    # (k,) explained variance ratio

    def coordinates(self, latent: np.ndarray, components: int | None = None) -> np.ndarray:
        if components is not None and not 1 <= components <= len(self.components):
            raise ValueError(f"components must be in 1..{len(self.components)}, "
                             f"got {components}")
        comps = self.components if components is None else self.components[:components]
        return (latent - self.mean) @ comps.T


class AeLLE:
    """The fitted model. ``fit`` trains it; ``predict`` gives losses in the targets' units."""

    def __init__(self, config: AeLLEConfig | None = None):
        self.config = config or AeLLEConfig()
        self.net = Autoencoder(self.config)
        self.normalisation: _Normalisation | None = None
        self.embedding: _Embedding | None = None
        self.classifiers: dict[str, Classifier] = {}
        self.n_train = 0
        self.history = FitHistory()

    @property
    def fitted(self) -> bool:
        """Trained, or loaded: the normalisation and the embedding are both known."""
        return self.normalisation is not None and self.embedding is not None

    # ---- training
    def fit(self, spectra, targets) -> AeLLE:
        """Train on spectra (any lengths) labelled with the loss each network ended with."""
        cfg = self.config
        z = interpolate(spectra, cfg.dim)
        t = np.asarray(targets, dtype=np.float64).reshape(-1)
        if t.shape[0] != z.shape[0]:
            raise ValueError(f"{z.shape[0]} spectra but {t.shape[0]} targets")
        if not np.isfinite(t).all():
            raise ValueError("targets must be finite (drop diverged networks or give them a "
                             "finite worst value)")
        if z.shape[0] < 4:
            raise ValueError(f"AeLLE needs at least 4 spectra to train, got {z.shape[0]}")
        if cfg.max_spectra is not None and z.shape[0] > cfg.max_spectra:
            keep = np.sort(np.random.default_rng(cfg.seed).choice(z.shape[0], cfg.max_spectra,
                                                                  replace=False))
            z, t = z[keep], t[keep]
        start = time.perf_counter()
        self.normalisation = norm = _Normalisation.fit(z, t, cfg)
        zn, tn = norm.spectra(z), norm.targets(t, cfg.target_clip)
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)
            self.net = Autoencoder(cfg)
            self._train(_f32(zn), _f32(tn))
        self.n_train = z.shape[0]
        self.embedding = self._fit_embedding(zn)
        self.history.seconds = time.perf_counter() - start
        return self

    def _train(self, z: Tensor, t: Tensor) -> None:
        cfg = self.config
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                               foreach=True)
        schedule = AlphaSchedule(cfg.alpha, cfg.warmup_epochs, cfg.ramp_epochs,
                                 cfg.plateau_window, cfg.plateau_tol)
        self.history = FitHistory()
        alpha, n = 0.0, z.shape[0]
        self.net.train()
        for _ in range(cfg.epochs):
            order = torch.randperm(n)
            recon_sum = pred_sum = 0.0
            for i in range(0, n, cfg.batch_size):
                idx = order[i:i + cfg.batch_size]
                _, z_hat, t_hat = self.net(z[idx])
                recon = ((z[idx] - z_hat) ** 2).mean()  # per position: alpha is free of D
                err = t[idx] - t_hat
                pred = err.abs().mean() if cfg.target_norm == "l1" else (err ** 2).mean()
                loss = recon + alpha * pred
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                recon_sum += recon.item() * len(idx)
                pred_sum += pred.item() * len(idx)
            self.history.recon.append(recon_sum / n)
            self.history.predict.append(pred_sum / n)
            self.history.alpha.append(alpha)
            alpha = schedule.step(recon_sum / n)
        self.history.ramp_started = schedule.ramp_started
        self.net.eval()

    def _fit_embedding(self, zn: np.ndarray) -> _Embedding:
        latent = self._latent_normed(zn)
        k = min(self.config.components, latent.shape[0], latent.shape[1])
        pca = PCA(n_components=k).fit(latent)
        comps = pca.components_.copy()
        # orient every PC so that it grows with the predicted loss (PC1 > m: worse networks)
        pred = self._predict_normed(zn)
        scores = (latent - pca.mean_) @ comps.T
        for j in range(k):
            if np.corrcoef(scores[:, j], pred)[0, 1] < 0:
                comps[j] = -comps[j]
        return _Embedding(mean=pca.mean_, components=comps,
                          variance=np.asarray(pca.explained_variance_ratio_))

    # ---- inference
    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("this AeLLE model has not been fitted (call fit or load one)")

    def _normed(self, spectra) -> np.ndarray:
        return self.normalisation.spectra(interpolate(spectra, self.config.dim))

    def _latent_normed(self, zn: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.net.encoder(_f32(zn)).double().numpy()

    def _predict_normed(self, zn: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.net(_f32(zn))[2].double().numpy()

    def predict(self, spectra) -> np.ndarray:
        """(n,) predicted final loss, in the units of the training targets."""
        self._require_fitted()
        return self.normalisation.targets_back(self._predict_normed(self._normed(spectra)))

    def latent(self, spectra) -> np.ndarray:
        """(n, latent) latent vectors."""
        self._require_fitted()
        return self._latent_normed(self._normed(spectra))

    def embed(self, spectra, components: int | None = None) -> np.ndarray:
        """(n, d) coordinates in the AeLLE PCA space (d: all fitted components by default)."""
        self._require_fitted()
        return self.embedding.coordinates(self.latent(spectra), components)

    def reconstruct(self, spectra) -> np.ndarray:
        """(n, D) decoded spectra, in exponent units."""
        self._require_fitted()
        with torch.no_grad():
            z_hat = self.net(_f32(self._normed(spectra)))[1].double().numpy()
        return self.normalisation.spectra_back(z_hat)

    # ---- classifiers on the embedding
    def calibrate(self, spectra, good, orthants: Sequence[int] = (1, 2, 4, 10)) -> AeLLE:
        """Fit the region classifiers on labelled networks (good: final loss in the better
        part): "pc1" splits PC1 at its median (the dissertation's AeLLE classifier), "pc1_f1"
        at the threshold with the best F1, "orthant<d>" the d-PC orthant classifier."""
        x = self.embed(spectra)
        self.classifiers = {"pc1": Threshold.median(x[:, 0], good),
                            "pc1_f1": Threshold.best_f1(x[:, 0], good)}
        for d in orthants:
            if d <= x.shape[1]:
                self.classifiers[f"orthant{d}"] = Orthant.fit(x, good, d)
        return self

    def classify(self, spectra, name: str = "pc1") -> np.ndarray:
        """(n,) bool: predicted good by the named classifier (see ``calibrate``)."""
        if name not in self.classifiers:
            raise ValueError(f"no classifier {name!r}; calibrated: {sorted(self.classifiers)}"
                             if self.classifiers else "no classifier calibrated: call calibrate")
        return self.classifiers[name].predict(self.embed(spectra))

    @property
    def version(self) -> str:
        """A short fingerprint of the weights: two models with the same version are the same."""
        self._require_fitted()
        h = hashlib.sha256()
        for tensor in self.net.state_dict().values():
            h.update(tensor.detach().cpu().numpy().tobytes())
        return h.hexdigest()[:12]

    # ---- persistence
    def to_bytes(self) -> bytes:
        self._require_fitted()
        cfg = asdict(self.config)
        cfg["hidden"] = list(cfg["hidden"])
        state = {
            "format": FORMAT_VERSION,
            "config": cfg,
            "weights": self.net.state_dict(),
            **self.normalisation.saved(),
            **self.embedding.saved(),
            "classifiers": {name: c.state() for name, c in self.classifiers.items()},
            "n_train": self.n_train,
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> AeLLE:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"expected bytes, got {type(data).__name__}")
        try:
            state = torch.load(io.BytesIO(bytes(data)), weights_only=True)
        except Exception as e:  # torch raises several types for a corrupt archive
            raise ValueError(f"not a saved AeLLE model: {e}") from None
        if not isinstance(state, dict) or "format" not in state:
            raise ValueError("not a saved AeLLE model: no format version")
        if state["format"] != FORMAT_VERSION:
            raise ValueError(f"saved AeLLE model has format {state['format']}, this version "
                             f"reads {FORMAT_VERSION}")
        model = cls(AeLLEConfig.from_dict(state["config"]))
        model.net.load_state_dict(state["weights"])
        model.net.eval()
        model.normalisation = _Normalisation.from_saved(state)
        model.embedding = _Embedding.from_saved(state)
        model.classifiers = {name: classifier_from_state(s)
                             for name, s in state["classifiers"].items()}
        model.n_train = state["n_train"]
        return model


class SpectrumPCA:
    """PCA of the raw (interpolated) spectra: the "LE PC1" baseline."""

    def __init__(self, spectra, dim: int = 256, components: int = 2):
        z = interpolate(spectra, dim)
        self.dim = dim
        self.pca = PCA(n_components=min(components, *z.shape)).fit(z)

    def transform(self, spectra) -> np.ndarray:
        return self.pca.transform(interpolate(spectra, self.dim))
