"""The random-effects posterior by numerical integration (Röver 2020, bayesmeta's method).

Model: ``y_i | theta_i ~ N(theta_i, sigma_i^2)``, ``theta_i | mu, tau ~ N(mu, tau^2)``, priors
``p(tau)`` and ``p(mu)`` (normal or flat). For fixed ``tau`` everything is conjugate, so

- the marginal likelihood of ``tau`` (``mu`` integrated out) is closed-form and the marginal
  posterior ``p(tau | y) ∝ p(tau) L(tau)`` is integrated numerically (:class:`TauPosterior`:
  composite Gauss-Legendre on geometric panels from ``1e-9 s`` to ``1e12 s``, ``s`` the data
  scale, accurate to about 1e-12; the support of the prior splits the panels);
- ``mu | tau, y``, ``theta_new | tau, y`` and ``theta_i | tau, y`` are normal, so their
  marginals are normal mixtures over ``tau``. As in bayesmeta, the mixture is discretised by
  the DIRECT algorithm (Röver & Friede 2017, J Comput Graph Stat 26:217-222): reference points
  ``tau_j`` are placed so that the symmetrised Kullback-Leibler divergence between neighbouring
  conditionals (of ``mu``, ``theta_new`` and every ``theta_i``) is ``delta``, up to the
  ``1 - epsilon`` posterior quantile of ``tau``, each weighted by its bin's posterior
  probability (:func:`direct_grid`; :class:`NormalMixtures`).

References: Röver C (2020). Bayesian random-effects meta-analysis using the bayesmeta R
package. *J Stat Softw* 93(6):1-51. doi:10.18637/jss.v093.i06.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from analysis.bayesian.priors import MuPrior, TauPrior

__all__ = [
    "NormalMixtures",
    "TauPosterior",
    "conditional_moments",
    "direct_grid",
    "log_likelihood_tau",
]

_LOG2PI = math.log(2.0 * math.pi)
_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)
_ROOT_TOL = 2.0**16 * np.finfo(float).eps  # bayesmeta's tol.uniroot


def log_likelihood_tau(
    tau: np.ndarray, y: np.ndarray, s2: np.ndarray, mu_prior: MuPrior
) -> np.ndarray:
    """Log marginal likelihood ``log p(y | tau)`` with ``mu`` integrated over its prior.

    With a normal prior ``N(m0, s0^2)`` this is a proper density of ``y``; with the flat prior
    it is ``log ∫ prod_i N(y_i; mu, tau^2 + sigma_i^2) dmu`` (bayesmeta's ``likelihood(tau=)``).
    """
    t = np.atleast_1d(np.asarray(tau, dtype=float))
    v = t[:, None] ** 2 + s2[None, :]
    w = 1.0 / v
    yy = np.broadcast_to(y, v.shape)
    n = y.size
    if mu_prior.proper:
        assert mu_prior.mean is not None and mu_prior.sd is not None
        w0 = 1.0 / mu_prior.sd**2
        sw = w.sum(axis=1) + w0
        mean = ((w * yy).sum(axis=1) + w0 * mu_prior.mean) / sw
        quad = (w * (yy - mean[:, None]) ** 2).sum(axis=1) + w0 * (mu_prior.mean - mean) ** 2
        logdet = np.log(v).sum(axis=1) + 2.0 * math.log(mu_prior.sd)
        n += 1
    else:
        sw = w.sum(axis=1)
        mean = (w * yy).sum(axis=1) / sw
        quad = (w * (yy - mean[:, None]) ** 2).sum(axis=1)
        logdet = np.log(v).sum(axis=1)
    return -0.5 * ((n - 1) * _LOG2PI + logdet + quad + np.log(sw))


def log_likelihood_joint(tau: np.ndarray, mu: float, y: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """``log p(y | tau, mu)`` at the array ``tau``."""
    v = np.asarray(tau, dtype=float)[:, None] ** 2 + s2[None, :]
    return -0.5 * (y.size * _LOG2PI + np.log(v).sum(axis=1) + ((y - mu) ** 2 / v).sum(axis=1))


def conditional_moments(
    tau: np.ndarray, y: np.ndarray, s2: np.ndarray, mu_prior: MuPrior
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Conditional posterior moments given ``tau`` (arrays over ``tau``).

    Returns
    -------
    mean, sd : ndarray (n,)
        Of ``mu | tau, y``.
    sd_pred : ndarray (n,)
        Of ``theta_new | tau, y`` (mean = ``mean``): ``sqrt(sd^2 + tau^2)``.
    mean_i, sd_i : ndarray (n, k)
        Of ``theta_i | tau, y``: with ``b = sigma_i^2 / (sigma_i^2 + tau^2)``,
        mean ``b mu_hat + (1 - b) y_i``, variance ``(1 - b) sigma_i^2 + b^2 sd^2``.
    """
    t = np.atleast_1d(np.asarray(tau, dtype=float))
    t2 = t[:, None] ** 2
    w = 1.0 / (t2 + s2[None, :])
    sw = w.sum(axis=1)
    swy = w @ y
    if mu_prior.proper:
        assert mu_prior.mean is not None and mu_prior.sd is not None
        w0 = 1.0 / mu_prior.sd**2
        sw = sw + w0
        swy = swy + w0 * mu_prior.mean
    var = 1.0 / sw
    mean = swy * var
    b = s2[None, :] * w
    mean_i = b * mean[:, None] + (1.0 - b) * y[None, :]
    var_i = (1.0 - b) * s2[None, :] + b**2 * var[:, None]
    return mean, np.sqrt(var), np.sqrt(var + t**2), mean_i, np.sqrt(var_i)


class TauPosterior:
    """Marginal posterior of ``tau`` by composite Gauss-Legendre quadrature.

    Parameters
    ----------
    y, s2 : ndarray
        Estimates and their squared standard errors.
    tau_prior : TauPrior
    mu_prior : MuPrior
    """

    def __init__(self, y: np.ndarray, s2: np.ndarray, tau_prior: TauPrior, mu_prior: MuPrior):
        self.y, self.s2, self.tau_prior, self.mu_prior = y, s2, tau_prior, mu_prior
        scale = max(float(np.sqrt(s2.max())), float(np.std(y)) if y.size > 1 else 0.0)
        base = scale * 2.0 ** np.arange(-30.0, 41.0, 0.5)
        lo, hi = tau_prior.lower, tau_prior.upper
        edges = np.unique(
            np.concatenate(
                [[lo], base[(base > lo) & (base < hi)], [hi] if math.isfinite(hi) else []]
            )
        )
        if lo == 0.0 and edges[0] != 0.0:
            edges = np.concatenate([[0.0], edges])
        self.edges = edges
        a, b = edges[:-1, None], edges[1:, None]
        half = 0.5 * (b - a)
        self.nodes = (a + half * (1.0 + _GL_X[None, :])).ravel()
        self.qweights = (half * _GL_W[None, :]).ravel()
        logf = self._log_unnorm(self.nodes)
        self._logf_nodes = logf  # reused by mode()
        self.logmax = float(np.max(logf))
        f = np.exp(logf - self.logmax) * self.qweights
        panel_mass = f.reshape(a.shape[0], -1).sum(axis=1)
        total = float(panel_mass.sum())
        if not (total > 0 and math.isfinite(total)):
            raise ValueError(
                "the posterior of tau could not be normalised (the likelihood "
                "underflows everywhere on the integration grid)"
            )
        #: log of the normalising constant ∫ p(tau) L(tau) dtau (the marginal likelihood
        #: when both priors are proper)
        self.log_evidence = self.logmax + math.log(total)
        self.node_prob = f / total
        self.cum_edges = np.concatenate([[0.0], np.cumsum(panel_mass) / total])

    def _log_unnorm(self, tau: np.ndarray) -> np.ndarray:
        t = np.asarray(tau, dtype=float)
        out = self.tau_prior.logpdf(t, self.s2)
        ok = np.isfinite(out)
        if np.any(ok):
            out[ok] = out[ok] + log_likelihood_tau(t[ok], self.y, self.s2, self.mu_prior)
        return out

    def logpdf(self, tau: np.ndarray) -> np.ndarray:
        """Log posterior density of ``tau``."""
        return self._log_unnorm(np.asarray(tau, dtype=float)) - self.log_evidence

    def pdf(self, tau: np.ndarray) -> np.ndarray:
        """Posterior density of ``tau``."""
        return np.exp(self.logpdf(tau))

    def cdf(self, tau: np.ndarray) -> np.ndarray:
        """Posterior distribution function of ``tau``."""
        x = np.atleast_1d(np.asarray(tau, dtype=float))
        xc = np.clip(x, self.edges[0], self.edges[-1])
        j = np.clip(np.searchsorted(self.edges, xc, side="right") - 1, 0, self.edges.size - 2)
        a = self.edges[j]
        half = 0.5 * (xc - a)
        pts = a[:, None] + half[:, None] * (1.0 + _GL_X[None, :])
        dens = np.exp(self._log_unnorm(pts.ravel()) - self.log_evidence).reshape(pts.shape)
        out = self.cum_edges[j] + half * (dens @ _GL_W)
        out = np.where(x >= self.edges[-1], 1.0, np.where(x <= self.edges[0], 0.0, out))
        return np.clip(out, 0.0, 1.0)

    def quantile(self, p: np.ndarray) -> np.ndarray:
        """Posterior quantiles of ``tau`` (0 -> lower bound of the support, 1 -> upper).

        Newton steps from the interpolated node distribution, kept inside the bracketing
        panel (bisection when a step leaves it), to 1e-14 relative.
        """
        pp = np.atleast_1d(np.asarray(p, dtype=float))
        out = np.empty(pp.shape)
        for i, q in enumerate(pp):
            if q <= 0.0:
                out[i] = self.edges[0]
                continue
            if q >= 1.0:
                out[i] = self.tau_prior.upper
                continue
            j = int(np.clip(np.searchsorted(self.cum_edges, q) - 1, 0, self.edges.size - 2))
            lo, hi = float(self.edges[j]), float(self.edges[j + 1])
            c0, c1 = self.cum_edges[j], self.cum_edges[j + 1]
            x = lo + (hi - lo) * (q - c0) / (c1 - c0) if c1 > c0 else 0.5 * (lo + hi)
            for _ in range(100):
                xa = np.array([x])
                f = float(self.cdf(xa)[0]) - q
                if f == 0.0:
                    break
                if f < 0:
                    lo = x
                else:
                    hi = x
                d = float(self.pdf(xa)[0])
                xn = x - f / d if d > 0 else 0.5 * (lo + hi)
                if not lo < xn < hi:
                    xn = 0.5 * (lo + hi)
                if abs(xn - x) <= 1e-14 * max(abs(x), 1e-300) or hi - lo <= 1e-15 * hi:
                    x = xn
                    break
                x = xn
            out[i] = x
        return out

    def expect(self, g: np.ndarray) -> float:
        """Posterior expectation of ``g(tau)`` given its values at :attr:`nodes`."""
        return float(np.dot(self.node_prob, g))

    def mode(self) -> float:
        """Posterior mode of ``tau`` (0 when the density is largest at the lower bound)."""
        logf = self._logf_nodes
        j = int(np.argmax(logf))
        lo = self.edges[0] if j == 0 else self.nodes[j - 1]
        hi = self.nodes[min(j + 1, self.nodes.size - 1)]
        res = optimize.minimize_scalar(
            lambda t: -float(self._log_unnorm(np.array([t]))[0]),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-12 * max(hi, 1e-300)},
        )
        t0 = self.edges[0]
        if float(self._log_unnorm(np.array([t0]))[0]) >= -res.fun:
            return float(t0)
        return float(res.x)


def _sym_kl(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> np.ndarray:
    v1, v2 = s1**2, s2**2
    return (m1 - m2) ** 2 * 0.5 * (1.0 / v1 + 1.0 / v2) + (v1 - v2) ** 2 / (2.0 * v1 * v2)


def direct_grid(
    post: TauPosterior, delta: float = 0.01, epsilon: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Return the reference points and weights of bayesmeta's DIRECT discretisation of ``tau``.

    The first reference point is 0 (the lower end of the support); bin margins and reference
    points alternate, each at symmetrised KL divergence ``delta`` from the previous one, the
    divergence being the largest over the conditionals of ``mu``, ``theta_new`` and every
    ``theta_i``; bins are added until a margin passes the ``1 - epsilon`` quantile. Weights are
    the bins' posterior probabilities, renormalised. As in bayesmeta, points may pass the upper
    end of a bounded prior's support (they then carry the remaining probability).
    Each divergence root is bracketed on 64 points, the bracket refined twice on 64 points and
    the root interpolated linearly (about 1e-12 relative).
    """
    y, s2, mp = post.y, post.s2, post.mu_prior
    w0 = 0.0 if mp.sd is None else 1.0 / mp.sd**2
    m0w = 0.0 if mp.mean is None else mp.mean * w0
    maxtau = float(post.quantile(np.array([1.0 - min(epsilon, 1.0 - epsilon)]))[0])

    def moments(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # (n, k + 2) means, variances
        t2 = t[:, None] ** 2
        w = 1.0 / (t2 + s2)
        var = 1.0 / (w.sum(axis=1, keepdims=True) + w0)
        mean = (w @ y[:, None] + m0w) * var
        b = s2 * w
        mi = b * mean + (1.0 - b) * y
        vi = (1.0 - b) * s2 + b * b * var
        return (
            np.concatenate([mean, mean, mi], axis=1),
            np.concatenate([var, var + t2, vi], axis=1),
        )

    def divergence(ref: tuple[np.ndarray, np.ndarray], t: np.ndarray) -> np.ndarray:
        m2, v2 = moments(t)
        m1, v1 = ref
        kl = (m1 - m2) ** 2 * 0.5 * (1.0 / v1 + 1.0 / v2) + (v1 - v2) ** 2 / (2.0 * v1 * v2)
        return kl.max(axis=1)

    state = {"upper": 1.0}
    frac = np.linspace(0.0, 1.0, 65)

    def next_point(t0: float) -> float:
        ref = moments(np.array([t0]))
        upper = max(state["upper"], t0)
        while divergence(ref, np.array([upper]))[0] <= delta:
            if upper > 1e300:
                return math.inf
            upper = upper * 2.0 if upper > 0 else 1.0
        state["upper"] = upper
        lo, hi = t0, upper
        for level in range(3):
            pts = t0 * (upper / t0) ** frac if level == 0 and t0 > 0 else lo + (hi - lo) * frac
            d = divergence(ref, pts) - delta
            j = int(np.argmax(d > 0))  # first point past the root (d[-1] > 0)
            lo, hi = pts[j - 1], pts[j]
            dlo, dhi = d[j - 1], d[j]
        return float(lo - dlo * (hi - lo) / (dhi - dlo))

    tau0 = post.tau_prior.lower
    refs = [tau0]
    margins = [next_point(tau0)]
    while margins[-1] <= maxtau or len(refs) < 2:
        r = next_point(margins[-1])
        if not math.isfinite(r):
            break
        refs.append(r)
        margins.append(next_point(r))
        if not math.isfinite(margins[-1]):
            break
    cdf = post.cdf(np.array(margins))
    w = np.diff(np.concatenate([[0.0], cdf]))
    w = np.maximum(w, 0.0)
    return np.array(refs), w / w.sum()


@dataclass(frozen=True)
class NormalMixtures:
    """Rows of normal mixtures sharing weights: row r is ``sum_j w_j N(means[r, j], sds[r, j]^2)``.

    All methods are vectorised over rows (one value per row).
    """

    weights: np.ndarray
    means: np.ndarray
    sds: np.ndarray

    def _z(self, x: np.ndarray) -> np.ndarray:
        xa = np.asarray(x, dtype=float)
        if xa.ndim == 2:
            return (xa[..., None] - self.means[:, None, :]) / self.sds[:, None, :]
        return (xa[:, None] - self.means) / self.sds

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Density of each row at ``x`` (``x`` of shape (rows,) or (rows, m))."""
        z = self._z(x)
        return (np.exp(-0.5 * z**2) / (math.sqrt(2 * math.pi) * self.sds_b(z))) @ self.weights

    def sds_b(self, z: np.ndarray) -> np.ndarray:
        """Return the sds broadcast against ``z``."""
        return np.broadcast_to(self.sds if z.ndim == 2 else self.sds[:, None, :], z.shape)

    def dpdf(self, x: np.ndarray) -> np.ndarray:
        """Return the derivative of each row's density at ``x``."""
        z = self._z(x)
        s = self.sds_b(z)
        return (-z * np.exp(-0.5 * z**2) / (math.sqrt(2 * math.pi) * s**2)) @ self.weights

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Distribution function of each row at ``x``."""
        return special.ndtr(self._z(x)) @ self.weights

    def mean(self) -> np.ndarray:
        """Mixture means."""
        return self.means @ self.weights

    def sd(self) -> np.ndarray:
        """Mixture standard deviations."""
        m = self.mean()
        return np.sqrt(((self.means - m[:, None]) ** 2 + self.sds**2) @ self.weights)

    def quantile(self, p: np.ndarray) -> np.ndarray:
        """Quantiles (``p`` of shape (rows,)) by safeguarded Newton iteration."""
        p = np.asarray(p, dtype=float)
        lo = (self.means - 40.0 * self.sds).min(axis=1)
        hi = (self.means + 40.0 * self.sds).max(axis=1)
        x = self.mean() + self.sd() * special.ndtri(np.clip(p, 1e-300, 1 - 1e-16))
        x = np.clip(x, lo, hi)
        for _ in range(100):
            f = self.cdf(x) - p
            lo = np.where(f < 0, x, lo)
            hi = np.where(f > 0, x, hi)
            d = self.pdf(x)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = np.where(d > 0, f / d, np.inf)
            xn = x - step
            bad = ~((xn > lo) & (xn < hi))
            xn = np.where(bad, 0.5 * (lo + hi), xn)
            done = np.abs(xn - x) <= 1e-14 * np.maximum(1.0, np.abs(x))
            x = xn
            if np.all(done):
                break
        return x

    def quantiles(self, p: np.ndarray) -> np.ndarray:
        """Quantiles at every probability of ``p`` for every row: shape (len(p), rows).

        One batched :meth:`quantile` iteration over the rows repeated once per probability.
        """
        pp = np.asarray(p, dtype=float)
        n = self.means.shape[0]
        tiled = NormalMixtures(
            self.weights, np.tile(self.means, (pp.size, 1)), np.tile(self.sds, (pp.size, 1))
        )
        return tiled.quantile(np.repeat(pp, n)).reshape(pp.size, n)

    def central(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed intervals."""
        n = self.means.shape[0]
        a = self.quantile(np.full(n, (1 - level) / 2))
        b = self.quantile(np.full(n, (1 + level) / 2))
        return a, b

    def d2pdf(self, x: np.ndarray) -> np.ndarray:
        """Return the second derivative of each row's density at ``x`` (shape (rows,))."""
        z = self._z(x)
        return (
            (z**2 - 1.0) * np.exp(-0.5 * z**2) / (math.sqrt(2 * math.pi) * self.sds**3)
        ) @ self.weights

    def shortest(
        self, level: float, central: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Shortest intervals with probability ``level``: ``F(b) - F(a) = level``, ``f(a) = f(b)``.

        Newton's method on the two equations from the central interval (``central``, when
        already computed), for unimodal rows; rows where it does not converge fall back to a
        one-dimensional root search.
        """
        a, b = self.central(level) if central is None else (central[0].copy(), central[1].copy())
        for _ in range(50):
            fa, fb = self.pdf(a), self.pdf(b)
            g1 = self.cdf(b) - self.cdf(a) - level
            g2 = np.log(fa) - np.log(fb)
            ja, jb = self.dpdf(a) / fa, self.dpdf(b) / fb
            det = (-fa) * (-jb) - fb * ja
            da = (g1 * (-jb) - fb * g2) / det
            db = ((-fa) * g2 - ja * g1) / det
            a, b = a - da, b - db
            if np.all(np.abs(da) + np.abs(db) <= 1e-13 * (1.0 + np.abs(a) + np.abs(b))):
                break
        ok = (np.abs(self.cdf(b) - self.cdf(a) - level) < 1e-10) & (
            np.abs(np.log(self.pdf(a)) - np.log(self.pdf(b))) < 1e-8
        )
        for r in np.flatnonzero(~ok):
            a[r], b[r] = self._shortest_row(int(r), level)
        return a, b

    def _row(self, r: int) -> NormalMixtures:
        return NormalMixtures(self.weights, self.means[r : r + 1], self.sds[r : r + 1])

    def _shortest_row(self, r: int, level: float) -> tuple[float, float]:
        row = self._row(r)

        def right(a: float) -> float:
            return float(row.quantile(np.array([float(row.cdf(np.array([a]))[0]) + level]))[0])

        def width(a: float) -> float:
            return right(a) - a

        lo = float(row.quantile(np.array([(1 - level) / 1000]))[0])
        hi = float(row.quantile(np.array([1 - level]))[0])
        res = optimize.minimize_scalar(
            width, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12 * (1 + abs(hi))}
        )
        return float(res.x), right(float(res.x))

    def mode(self, bracket: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Modes: the maximum of each row's density between its 10% and 90% quantiles.

        The density is evaluated on 33 equally spaced points of the interval; Newton's method
        on ``f'(x) = 0`` then runs for all rows at once from the highest point, inside the
        bracket of its neighbours (``f'(lo) > 0 > f'(hi)``; bisection when a step leaves it)
        to 1e-12 relative. A row whose highest point is an end of the interval, or that does
        not converge, is searched by a bounded one-dimensional maximisation on the bracket.
        ``bracket`` (the 10% and 90% quantiles of each row) is computed when not given.
        """
        n = self.means.shape[0]
        lo0, hi0 = self.quantiles(np.array([0.1, 0.9])) if bracket is None else bracket
        grid = lo0[:, None] + (hi0 - lo0)[:, None] * np.linspace(0.0, 1.0, 33)[None, :]
        j = np.argmax(self.pdf(grid), axis=1)
        rows = np.arange(n)
        x = grid[rows, j]
        lo = grid[rows, np.maximum(j - 1, 0)]
        hi = grid[rows, np.minimum(j + 1, 32)]
        blo, bhi = lo.copy(), hi.copy()
        ok = (self.dpdf(lo) > 0) & (self.dpdf(hi) < 0)
        done = np.zeros(n, dtype=bool)
        for _ in range(100):
            g = self.dpdf(x)
            lo = np.where(g > 0, x, lo)
            hi = np.where(g < 0, x, hi)
            h = self.d2pdf(x)
            with np.errstate(divide="ignore", invalid="ignore"):
                xn = np.where(h < 0, x - g / h, 0.5 * (lo + hi))
            xn = np.where((xn > lo) & (xn < hi), xn, 0.5 * (lo + hi))
            done = (np.abs(xn - x) <= 1e-12 * (1.0 + np.abs(x))) | (g == 0)
            x = np.where(g == 0, x, xn)
            if np.all(done | ~ok):
                break
        for r in np.flatnonzero(~(ok & done)):
            row = self._row(int(r))
            res = optimize.minimize_scalar(
                lambda v, row=row: -float(row.pdf(np.array([v]))[0]),
                bounds=(blo[r], bhi[r]),
                method="bounded",
                options={"xatol": 1e-10 * (1 + abs(x[r]))},
            )
            x[r] = res.x
        return x
