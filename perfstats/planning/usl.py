"""The Universal Scalability Law (Gunther 1993, 2007), fitted by bounded non-linear least squares.

``X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1))``: ``sigma`` is contention (the serial
fraction), ``kappa`` coherency (crosstalk), ``lambda`` the throughput of one user. The R package
``usl`` calls them alpha, beta and gamma.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from scipy.optimize import least_squares

from perfstats.errors import InsufficientDataError
from perfstats.render.document import Document, Result, Section
from perfstats.render.tables import jsonable
from perfstats.stats.tails import t_ppf

if TYPE_CHECKING:
    import altair as alt

Method = Literal["nls", "quadratic"]
Interval = Literal["wald", "usl", "bootstrap"]

MIN_POINTS = 6
"""Fewer distinct loads than this leave kappa poorly identified (the usl package warns too)."""

_PARAMS = ("sigma", "kappa", "lambda")
_SIGMA_STARTS = (0.01, 0.1, 0.5)
_KAPPA_STARTS = (1e-4, 1e-2)
_TOL = 1e-15


def _throughput(params: np.ndarray, n: np.ndarray) -> np.ndarray:
    sigma, kappa, lam = params
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


def _jacobian(params: np.ndarray, n: np.ndarray) -> np.ndarray:
    """d X(n) / d (sigma, kappa, lambda), one row per load."""
    sigma, kappa, lam = params
    d = 1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0)
    return np.column_stack(
        [-lam * n * (n - 1.0) / d**2, -lam * n * n * (n - 1.0) / d**2, n / d]
    )


def _peak(sigma: float, kappa: float, lam: float) -> tuple[float, float]:
    """(N*, X(N*)); for kappa = 0 throughput rises forever towards the Amdahl limit."""
    if kappa <= 0.0:
        return math.inf, (lam / sigma if sigma > 0.0 else math.inf)
    n_star = math.sqrt(max(1.0 - sigma, 0.0) / kappa)
    return n_star, float(_throughput(np.array([sigma, kappa, lam]), np.array([n_star]))[0])


def _solve_nls(n: np.ndarray, x: np.ndarray, starts: Sequence[np.ndarray]) -> np.ndarray:
    best = None
    for p0 in starts:
        res = least_squares(
            lambda p: _throughput(p, n) - x,
            p0,
            jac=lambda p: _jacobian(p, n),
            bounds=([0.0, 0.0, 0.0], [1.0, 1.0, np.inf]),
            method="trf",
            x_scale="jac",
            ftol=_TOL,
            xtol=_TOL,
            gtol=_TOL,
            max_nfev=20_000,
        )
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    params = np.asarray(best.x, dtype=float)
    # A coefficient that sits on its lower bound comes back as ~1e-30, not 0; snap it so that
    # N* and the Amdahl limit come out exactly infinite instead of absurdly large.
    top = float(n.max())
    if params[0] * top < 1e-12:
        params[0] = 0.0
    if params[1] * top * top < 1e-12:
        params[1] = 0.0
    return params


def _solve_quadratic(n: np.ndarray, x: np.ndarray) -> np.ndarray:
    """GCaP ch. 5 'deviation from linearity': OLS of N/C - 1 on (N-1)^2 and (N-1), no intercept."""
    x1 = float(np.mean(x[n == 1.0]))
    if x1 <= 0.0:
        raise InsufficientDataError("the quadratic USL method needs a positive throughput at N = 1")
    capacity = x / x1
    u = n - 1.0
    design = np.column_stack([u * u, u])
    (a, b), *_ = np.linalg.lstsq(design, n / capacity - 1.0, rcond=None)
    return np.array([b - a, a, x1])


@dataclass(frozen=True)
class USLFit(Result):
    """A fitted Universal Scalability Law model.

    Attributes:
        sigma: contention coefficient (0..1).
        kappa: coherency coefficient (0..1).
        lambda_: throughput at N = 1 (``lambda`` in :meth:`to_dict`).
        std_errors: asymptotic standard errors ``sqrt(diag((J'J)^-1) * SSE / df)``, J the
            Jacobian of X at the estimate (for ``method="quadratic"`` lambda is the measured
            X(1), held fixed: standard error 0).
        ci: intervals for sigma, kappa, lambda, n_star and x_max at ``ci_level``.
        ci_level: the intervals' nominal coverage.
        ci_method: ``wald``: estimate +/- t(1 - (1 - level)/2, df) x SE, cut to the parameter
            bounds (``nls``), and for n_star the range over the sigma x kappa box, for x_max
            the delta method; ``usl``: the R package's rule estimate +/- SE x qt(level, n - 1),
            uncut (for comparison with its output only); ``bootstrap``: percentile intervals
            over a seeded residual bootstrap.
        n_star: the load of peak throughput ``sqrt((1 - sigma) / kappa)`` (inf when kappa = 0).
        x_max: throughput at ``n_star`` (the Amdahl limit when kappa = 0).
        amdahl_limit: ``lambda / sigma``, the ceiling with no coherency cost (inf when sigma = 0).
        r_squared: 1 - SSE / SST on throughput.
        rse: residual standard error ``sqrt(SSE / df)``.
        df: residual degrees of freedom (points minus fitted parameters).
        method: ``nls`` (3 parameters, bounded) or ``quadratic`` (2 parameters, GCaP ch. 5).
        concurrency: the loads fitted.
        throughput: the throughputs fitted.
        covariance: covariance matrix of (sigma, kappa, lambda).
        warnings: reasons to distrust the fit (too few points, extrapolated N*...).
    """

    sigma: float
    kappa: float
    lambda_: float
    std_errors: dict[str, float]
    ci: dict[str, tuple[float, float]]
    ci_level: float
    ci_method: str
    n_star: float
    x_max: float
    amdahl_limit: float
    r_squared: float
    rse: float
    df: int
    method: str
    concurrency: tuple[float, ...] = field(repr=False)
    throughput: tuple[float, ...] = field(repr=False)
    covariance: tuple[tuple[float, ...], ...] = field(repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def params(self) -> np.ndarray:
        """``array([sigma, kappa, lambda])``."""
        return np.array([self.sigma, self.kappa, self.lambda_])

    @property
    def optimal_load(self) -> float:
        """The usl package's 'optimal' load ``1 / sigma`` (inf when sigma = 0)."""
        return 1.0 / self.sigma if self.sigma > 0 else math.inf

    def predict(self, n: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Model throughput at load(s) ``n``."""
        return _throughput(self.params, np.atleast_1d(np.asarray(n, dtype=float)))

    def confidence_band(
        self, n: float | Sequence[float] | np.ndarray, *, level: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise band for the mean throughput at ``n`` (delta method, t with ``df``).

        Args:
            n: loads.
            level: coverage; default ``ci_level``.

        Returns:
            ``(lower, upper)``, the lower bound cut at 0.
        """
        arr = np.atleast_1d(np.asarray(n, dtype=float))
        fit = self.predict(arr)
        cov = np.asarray(self.covariance)
        grad = _jacobian(self.params, arr)
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", grad, cov, grad), 0.0))
        q = t_ppf(0.5 + (level or self.ci_level) / 2.0, max(self.df, 1))
        return np.maximum(fit - q * se, 0.0), fit + q * se

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values; infinite or undefined numbers become ``None``."""
        return jsonable({
            "sigma": self.sigma,
            "kappa": self.kappa,
            "lambda": self.lambda_,
            "std_errors": dict(self.std_errors),
            "ci": dict(self.ci),
            "ci_level": self.ci_level,
            "ci_method": self.ci_method,
            "n_star": self.n_star,
            "x_max": self.x_max,
            "amdahl_limit": self.amdahl_limit,
            "optimal_load": self.optimal_load,
            "r_squared": self.r_squared,
            "rse": self.rse,
            "df": self.df,
            "method": self.method,
            "points": len(self.concurrency),
            "warnings": list(self.warnings),
        })

    def headline(self) -> str:
        """One line: the coefficients, the peak and the fit's quality."""
        return (f"USL ({self.method}): sigma {_fmt(self.sigma)}, kappa {_fmt(self.kappa)}, "
                f"N* {_fmt(self.n_star)}, X_max {_fmt(self.x_max)}; R\u00b2 "
                f"{self.r_squared:.4f}, {len(self.concurrency)} points")

    def document(self) -> Document:
        """The parameters with their intervals, and the fit's quality."""
        rows = [("sigma (contention)", self.sigma, "sigma"),
                ("kappa (coherency)", self.kappa, "kappa"),
                ("lambda (X at N=1)", self.lambda_, "lambda"),
                ("N* (peak load)", self.n_star, "n_star"),
                ("X_max", self.x_max, "x_max")]
        table = pl.DataFrame(
            [(name, _fmt(value), f"[{_fmt(self.ci[key][0])}, {_fmt(self.ci[key][1])}]")
             for name, value, key in rows],
            schema=["parameter", "estimate", f"{self.ci_level:.0%} CI ({self.ci_method})"],
            orient="row")
        ceiling = (f"Amdahl limit {_fmt(self.amdahl_limit)} req/s"
                   if math.isfinite(self.amdahl_limit)
                   else "no Amdahl limit (sigma 0: no serial part)")
        quality = (f"{self.method} fit, R\u00b2 {self.r_squared:.4f}, RSE {_fmt(self.rse)}, "
                   f"{ceiling}, {len(self.concurrency)} points.")
        return Document(title="USL fit", lead=[self.headline()], warnings=self.warnings,
                        sections=[Section("Universal Scalability Law", table=table,
                                          text=[quality], right=["estimate"])])

    def curve(self, lowest: float, highest: float, *, points: int = 120) -> pl.DataFrame:
        """The model over the measured range and past it (to N* or 2x ``highest``, +10 %).

        Returns:
            ``points`` rows of users, rps (the model), lower and upper (its pointwise band).
        """
        end = max(highest, min(self.n_star, 2 * highest)) if math.isfinite(self.n_star) \
            else highest
        grid = np.linspace(max(lowest / 2, 0.5), end * 1.1, points)
        lower, upper = self.confidence_band(grid)
        return pl.DataFrame({"users": grid, "rps": self.predict(grid), "lower": lower,
                             "upper": upper})

    def chart(self, *, points: int = 120) -> alt.LayerChart:
        """The measured throughputs, the fitted curve and its band, and N*.

        Args:
            points: how many loads the curve is drawn at.
        """
        from perfstats.render import charts

        curve = self.curve(min(self.concurrency), max(self.concurrency), points=points)
        return charts.capacity_curve(
            pl.DataFrame({"users": self.concurrency, "rps": self.throughput}), x="users",
            y="rps", fit=curve.select("users", "rps"),
            band=curve.select("users", "lower", "upper"), marks={"USL N*": self.n_star},
            x_title="concurrency", title="Throughput and the USL fit")


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "n/a")
    return f"{value:.4g}"


def fit_usl(
    concurrency: Sequence[float] | np.ndarray,
    throughput: Sequence[float] | np.ndarray,
    *,
    method: Method = "nls",
    ci: Interval = "wald",
    level: float = 0.95,
    n_boot: int = 500,
    seed: int | None = 0,
) -> USLFit:
    """Fit the Universal Scalability Law to measured (load, throughput) points.

    ``method="nls"`` (default) is unweighted least squares on X with bounds sigma, kappa in [0, 1]
    and lambda >= 0 (scipy ``least_squares``, trust-region reflective), from several starting
    points (lambda0 = max(X/N); sigma0 in 0.01, 0.1, 0.5; kappa0 in 1e-4, 1e-2); the best one
    wins. ``method="quadratic"`` is the older GCaP 2-parameter transform (usl <= 1.8): it needs a
    point at N = 1 and can return negative coefficients; offered for compatibility only.

    Args:
        concurrency: loads N (users, processors), each > 0.
        throughput: throughput at each load (any unit; the fit is in that unit).
        method: ``nls`` or ``quadratic``.
        ci: interval kind, see :class:`USLFit` (``wald`` default, ``usl``, ``bootstrap``).
        level: interval coverage.
        n_boot: bootstrap resamples (``ci="bootstrap"`` only).
        seed: bootstrap seed.

    Returns:
        The fit with derived quantities and warnings.

    Raises:
        InsufficientDataError: fewer than 3 points (4 for the quadratic method: it needs df > 0
            after fixing lambda), or no point at N = 1 for ``quadratic``.
        ValueError: arrays of different length, non-finite values, a load <= 0 or a negative
            throughput, a bad ``level``.

    Example:
        >>> fit = fit_usl([1, 2, 4, 6, 8, 10], [1, 1.8868, 3.0769, 3.5294, 3.5398, 3.3557])
        >>> round(fit.sigma, 3), round(fit.kappa, 3), round(fit.n_star, 1)
        (0.02, 0.02, 7.0)
    """
    n = np.asarray(concurrency, dtype=float).ravel()
    x = np.asarray(throughput, dtype=float).ravel()
    if n.shape != x.shape:
        raise ValueError(f"concurrency has {n.size} values but throughput {x.size}")
    if not (np.all(np.isfinite(n)) and np.all(np.isfinite(x))):
        raise ValueError("concurrency and throughput must be finite numbers")
    if np.any(n <= 0) or np.any(x < 0):
        raise ValueError("loads must be > 0 and throughputs >= 0")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if method not in ("nls", "quadratic"):
        raise ValueError(f"method must be 'nls' or 'quadratic', got {method!r}")
    if ci not in ("wald", "usl", "bootstrap"):
        raise ValueError(f"ci must be 'wald', 'usl' or 'bootstrap', got {ci!r}")
    n_free = 3 if method == "nls" else 2
    if n.size <= n_free:
        raise InsufficientDataError(
            f"a USL fit ({method}) needs at least {n_free + 1} points, got {n.size}")

    if method == "nls":
        lam0 = float(np.max(x / n)) or 1.0
        starts = [np.array([s, k, lam0]) for s in _SIGMA_STARTS for k in _KAPPA_STARTS]
        params = _solve_nls(n, x, starts)
    else:
        if not np.any(n == 1.0):
            raise InsufficientDataError("the quadratic USL method needs a measurement at N = 1")
        params = _solve_quadratic(n, x)

    residuals = x - _throughput(params, n)
    sse = float(residuals @ residuals)
    df = n.size - n_free
    cov = _covariance(params, n, sse, df, method)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    sst = float(np.sum((x - x.mean()) ** 2))
    sigma, kappa, lam = (float(v) for v in params)
    n_star, x_max = _peak(sigma, kappa, lam)

    if ci == "bootstrap":
        intervals = _bootstrap_intervals(n, x, params, residuals, method, level, n_boot, seed)
    else:
        intervals = _analytic_intervals(params, se, cov, n_star, level, ci, df, n.size,
                                        clip=method == "nls")

    warnings = []
    distinct = np.unique(n).size
    if distinct < MIN_POINTS:
        warnings.append(
            f"only {distinct} distinct loads: with fewer than {MIN_POINTS} the coefficients "
            "(kappa above all) are poorly determined")
    if math.isfinite(n_star) and n_star > 2.0 * float(n.max()):
        warnings.append(
            f"N* = {n_star:.4g} is beyond twice the largest tested load ({float(n.max()):g}): "
            "the peak is an extrapolation")
    if kappa == 0.0 and method == "nls":
        warnings.append("kappa is at its bound 0: no retrograde throughput in the data, "
                        "N* is infinite and X_max is the Amdahl limit")
    if method == "quadratic" and (sigma < 0 or kappa < 0):
        warnings.append("the quadratic method returned a negative coefficient (physically "
                        "impossible); use method='nls'")

    return USLFit(
        sigma=sigma,
        kappa=kappa,
        lambda_=lam,
        std_errors=dict(zip(_PARAMS, (float(v) for v in se), strict=True)),
        ci=intervals,
        ci_level=level,
        ci_method=ci,
        n_star=n_star,
        x_max=x_max,
        amdahl_limit=lam / sigma if sigma > 0 else math.inf,
        r_squared=1.0 - sse / sst if sst > 0 else math.nan,
        rse=math.sqrt(sse / df),
        df=df,
        method=method,
        concurrency=tuple(float(v) for v in n),
        throughput=tuple(float(v) for v in x),
        covariance=tuple(tuple(float(v) for v in row) for row in cov),
        warnings=tuple(warnings),
    )


def _covariance(params: np.ndarray, n: np.ndarray, sse: float, df: int, method: str) -> np.ndarray:
    """``(J'J)^-1 SSE / df`` with J the Jacobian of X; lambda is held fixed for 'quadratic'."""
    jac = _jacobian(params, n)
    free = 3 if method == "nls" else 2
    cov = np.zeros((3, 3))
    cov[:free, :free] = np.linalg.pinv(jac[:, :free].T @ jac[:, :free]) * (sse / df)
    return cov


def _analytic_intervals(
    params: np.ndarray, se: np.ndarray, cov: np.ndarray, n_star: float, level: float,
    rule: str, df: int, n_points: int, *, clip: bool,
) -> dict[str, tuple[float, float]]:
    if rule == "usl":
        q = t_ppf(level, n_points - 1)
    else:
        q = t_ppf(0.5 + level / 2.0, df)
    lo, hi = params - q * se, params + q * se
    if rule == "wald" and clip:
        lo, hi = np.maximum(lo, 0.0), np.minimum(hi, [1.0, 1.0, np.inf])
    out = {name: (float(a), float(b)) for name, a, b in zip(_PARAMS, lo, hi, strict=True)}
    # N* falls as sigma or kappa grow: its range over the sigma x kappa box.
    s_lo, s_hi = max(out["sigma"][0], 0.0), min(out["sigma"][1], 1.0)
    k_lo, k_hi = max(out["kappa"][0], 0.0), max(out["kappa"][1], 0.0)
    out["n_star"] = (_peak(s_hi, k_hi, 1.0)[0], _peak(s_lo, k_lo, 1.0)[0])
    if math.isfinite(n_star):
        # Envelope theorem: dX(N*)/dtheta = dX/dtheta at N*, since dX/dN = 0 there.
        grad = _jacobian(params, np.array([n_star]))[0]
        x_star = float(_throughput(params, np.array([n_star]))[0])
        half = t_ppf(0.5 + level / 2.0, df) * math.sqrt(
            max(float(grad @ cov @ grad), 0.0))
        out["x_max"] = (max(float(x_star - half), 0.0), float(x_star + half))
    else:
        sigma, lam = float(params[0]), float(params[2])
        limit = lam / sigma if sigma > 0 else math.inf
        out["x_max"] = (limit, limit) if not math.isfinite(limit) else _ratio_interval(
            out["lambda"], out["sigma"])
    return out


def _ratio_interval(lam: tuple[float, float], sigma: tuple[float, float]) -> tuple[float, float]:
    """Range of lambda / sigma over the box of their intervals."""
    lo = lam[0] / sigma[1] if sigma[1] > 0 else math.inf
    hi = lam[1] / sigma[0] if sigma[0] > 0 else math.inf
    return lo, hi


def _bootstrap_intervals(
    n: np.ndarray, x: np.ndarray, params: np.ndarray, residuals: np.ndarray, method: str,
    level: float, n_boot: int, seed: int | None,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals from a residual bootstrap, each refit started at the estimate."""
    if n_boot < 50:
        raise ValueError(f"n_boot must be at least 50, got {n_boot}")
    rng = np.random.default_rng(seed)
    fitted = _throughput(params, n)
    # Leverage-free rescaling of the residuals so their variance matches SSE / df.
    scale = math.sqrt(n.size / max(n.size - (3 if method == "nls" else 2), 1))
    centred = (residuals - residuals.mean()) * scale
    draws = np.empty((n_boot, 5))
    for b in range(n_boot):
        xb = np.maximum(fitted + rng.choice(centred, size=n.size, replace=True), 0.0)
        pb = _solve_nls(n, xb, [params]) if method == "nls" else _solve_quadratic(n, xb)
        draws[b, :3] = pb
        draws[b, 3:] = _peak(float(pb[0]), float(pb[1]), float(pb[2]))
    tail = (1.0 - level) / 2.0 * 100.0
    # inverted_cdf never interpolates, so an infinite N* draw cannot turn into NaN.
    lo = np.percentile(draws, tail, axis=0, method="inverted_cdf")
    hi = np.percentile(draws, 100.0 - tail, axis=0, method="inverted_cdf")
    names = (*_PARAMS, "n_star", "x_max")
    return {name: (float(a), float(b)) for name, a, b in zip(names, lo, hi, strict=True)}
