//! Special functions the calibration statistics need: log-gamma, the regularized incomplete beta function and its
//! inverse, and the binomial distribution with scipy's exact two-sided binomial test.
//!
//! Everything is computed in log space with Loader's saddle-point form ("Fast and accurate computation of binomial
//! probabilities", 2000, the algorithm behind R's `dbinom`): `ln Γ(z) = (z − ½) ln z − z + ½ ln 2π + δ(z)`, where the
//! Stirling remainder `δ` comes from its asymptotic series for z > 15 and from the exact recurrence
//! `δ(z) = δ(z + 1) + (z + ½) ln(1 + 1/z) − 1` below (no Lanczos table: the recurrence keeps the absolute error in
//! log space near 1e-16 for every argument). The power term `x^a (1 − x)^b / B(a, b)` of the incomplete beta function is
//! written through the deviance `bd0`, so counts of millions lose no digits to cancellation. The continued fraction is
//! Lentz's method (Numerical Recipes' `betacf`), always evaluated on the side where it is the smaller tail, so small
//! probabilities keep their relative accuracy. Tested against scipy to 1e-12 relative (`tests/reference.rs`).

const HALF_LN_TWO_PI: f64 = 0.918_938_533_204_672_8;
const TWO_PI: f64 = std::f64::consts::TAU;

/// The Stirling remainder `δ(z) = ln Γ(z) − (z − ½) ln z + z − ½ ln 2π`, for z > 0.
pub fn stirling_remainder(z: f64) -> f64 {
    if z.is_nan() || z <= 0.0 || z == f64::INFINITY {
        return if z == f64::INFINITY { 0.0 } else { f64::NAN };
    }
    let mut z = z;
    let mut shift = 0.0;
    // At most 16 steps: the recurrence carries z above 15, where the series is exact to about 1e-18.
    while z <= 15.0 {
        shift += (z + 0.5) * (1.0 / z).ln_1p() - 1.0;
        z += 1.0;
    }
    let inverse = 1.0 / z;
    let inverse2 = inverse * inverse;
    // Asymptotic series: 1/12z − 1/360z³ + 1/1260z⁵ − 1/1680z⁷ + 1/1188z⁹ − 691/360360z¹¹ + 1/156z¹³.
    let series = inverse
        * (1.0 / 12.0
            - inverse2
                * (1.0 / 360.0
                    - inverse2
                        * (1.0 / 1260.0
                            - inverse2
                                * (1.0 / 1680.0
                                    - inverse2 * (1.0 / 1188.0 - inverse2 * (691.0 / 360_360.0 - inverse2 / 156.0))))));
    shift + series
}

/// `ln Γ(z)` for z > 0 (NaN otherwise).
pub fn ln_gamma(z: f64) -> f64 {
    if z.is_nan() || z <= 0.0 {
        return f64::NAN;
    }
    if z == f64::INFINITY {
        return f64::INFINITY;
    }
    (z - 0.5) * z.ln() - z + HALF_LN_TWO_PI + stirling_remainder(z)
}

/// Loader's deviance term `x ln(x / m) + m − x`, accurate when x is close to m.
fn deviance(x: f64, m: f64) -> f64 {
    if x == 0.0 {
        return m;
    }
    if m == 0.0 {
        return f64::INFINITY;
    }
    if (x - m).abs() < 0.1 * (x + m) {
        let v = (x - m) / (x + m);
        let mut s = (x - m) * v;
        if s.abs() < f64::MIN_POSITIVE {
            return s;
        }
        let mut term = 2.0 * x * v;
        let v2 = v * v;
        for j in 1..1000 {
            term *= v2;
            let next = s + term / f64::from(2 * j + 1);
            if next == s {
                return next;
            }
            s = next;
        }
        s
    } else {
        x * (x / m).ln() + m - x
    }
}

/// `ln[x^a y^b / B(a, b)]` with y = 1 − x passed separately (so either side can be given exactly).
fn ln_beta_power(a: f64, b: f64, x: f64, y: f64) -> f64 {
    let c = a + b;
    -deviance(a, c * x) - deviance(b, c * y) + 0.5 * (a * b / (TWO_PI * c)).ln()
        - stirling_remainder(a)
        - stirling_remainder(b)
        + stirling_remainder(c)
}

/// The continued fraction of `I_x(a, b)` (modified Lentz), converging fast for x < (a + 1) / (a + b + 2).
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const MAX_ITERATIONS: u32 = 200_000;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=MAX_ITERATIONS {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() <= 1e-16 {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function and its complement, `(I_x(a, b), 1 − I_x(a, b))`, with y = 1 − x given.
/// The smaller of the two is computed directly, the larger as its complement.
fn beta_inc_parts(a: f64, b: f64, x: f64, y: f64) -> (f64, f64) {
    if !(a > 0.0 && b > 0.0) || x.is_nan() || y.is_nan() {
        return (f64::NAN, f64::NAN);
    }
    if x <= 0.0 {
        return (0.0, 1.0);
    }
    if y <= 0.0 {
        return (1.0, 0.0);
    }
    if x < (a + 1.0) / (a + b + 2.0) {
        let t = (ln_beta_power(a, b, x, y).exp() * beta_continued_fraction(a, b, x) / a).clamp(0.0, 1.0);
        (t, 1.0 - t)
    } else {
        let t = (ln_beta_power(b, a, y, x).exp() * beta_continued_fraction(b, a, y) / b).clamp(0.0, 1.0);
        (1.0 - t, t)
    }
}

/// The regularized incomplete beta function `I_x(a, b)` (scipy's `betainc(a, b, x)`).
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    beta_inc_parts(a, b, x, 1.0 - x).0
}

/// The quantile function of Beta(a, b) (scipy's `beta.ppf(q, a, b)`): Newton's method on the tail that holds q,
/// kept inside a bracket that bisection shrinks whenever a Newton step would leave it.
pub fn beta_ppf(q: f64, a: f64, b: f64) -> f64 {
    if !(!q.is_nan() && a > 0.0 && b > 0.0 && a.is_finite() && b.is_finite()) {
        return f64::NAN;
    }
    if q <= 0.0 {
        return 0.0;
    }
    if q >= 1.0 {
        return 1.0;
    }
    // Below the median, solve I_x = q; above it, 1 − I_x = 1 − q, so the small tail keeps its digits.
    let lower = q <= 0.5;
    let target = if lower { q } else { 1.0 - q };
    let (mut low, mut high) = (0.0_f64, 1.0_f64);
    let mut x = a / (a + b);
    for _ in 0..5000 {
        let y = 1.0 - x;
        let (i, ic) = beta_inc_parts(a, b, x, y);
        // g grows with x in both forms.
        let g = if lower { i - target } else { target - ic };
        if g == 0.0 {
            return x;
        }
        if g < 0.0 {
            low = x;
        } else {
            high = x;
        }
        let density = ln_beta_power(a, b, x, y).exp() / (x * y);
        let mut next = x - g / density;
        if !(next > low && next < high && next.is_finite()) {
            next = 0.5 * (low + high);
        }
        if (next - x).abs() <= 1e-14 * next.abs() || high - low <= 4.0 * f64::EPSILON * x {
            return next;
        }
        x = next;
    }
    x
}

/// The binomial probability mass `P(X = k)` for X ~ Bin(n, p) (scipy's `binom.pmf`); 0 outside 0..=n.
pub fn binomial_pmf(k: i64, n: u64, p: f64) -> f64 {
    if k < 0 || k as u64 > n || !(0.0..=1.0).contains(&p) {
        return 0.0;
    }
    let k = k as u64;
    if p == 0.0 {
        return if k == 0 { 1.0 } else { 0.0 };
    }
    if p == 1.0 {
        return if k == n { 1.0 } else { 0.0 };
    }
    let nf = n as f64;
    let q = 1.0 - p;
    if k == 0 {
        return (nf * (-p).ln_1p()).exp();
    }
    if k == n {
        return (nf * p.ln()).exp();
    }
    let kf = k as f64;
    let rest = (n - k) as f64;
    let lc = stirling_remainder(nf)
        - stirling_remainder(kf)
        - stirling_remainder(rest)
        - deviance(kf, nf * p)
        - deviance(rest, nf * q);
    let lf = TWO_PI.ln() + kf.ln() + (-kf / nf).ln_1p();
    (lc - 0.5 * lf).exp()
}

/// `P(X ≤ k)` (scipy's `binom.cdf`).
pub fn binomial_cdf(k: i64, n: u64, p: f64) -> f64 {
    if k < 0 {
        return 0.0;
    }
    if k as u64 >= n {
        return 1.0;
    }
    let k = k as u64;
    beta_inc_parts((n - k) as f64, (k + 1) as f64, 1.0 - p, p).0
}

/// `P(X > k)` (scipy's `binom.sf`).
pub fn binomial_sf(k: i64, n: u64, p: f64) -> f64 {
    if k < 0 {
        return 1.0;
    }
    if k as u64 >= n {
        return 0.0;
    }
    let k = k as u64;
    beta_inc_parts((k + 1) as f64, (n - k) as f64, p, 1.0 - p).0
}

/// scipy's `_binary_search_for_binom_tst`: over integers lo..=hi where `a` is monotone, the last index whose value
/// is at most d (or the one that equals it).
fn binomial_test_search(a: impl Fn(i64) -> f64, d: f64, mut low: i64, mut high: i64) -> i64 {
    while low < high {
        let middle = low + (high - low) / 2;
        let value = a(middle);
        if value < d {
            low = middle + 1;
        } else if value > d {
            high = middle - 1;
        } else {
            return middle;
        }
    }
    if a(low) <= d { low } else { low - 1 }
}

/// The exact two-sided binomial test's p-value, `scipy.stats.binomtest(k, n, p).pvalue`: the probability of every
/// outcome whose mass is at most the observed one's times 1 + 1e-7 (scipy's relative tolerance), found with scipy's
/// own binary search so the same terms are summed. None when n = 0 or k > n or p is not in [0, 1].
pub fn binomial_test_two_sided(k: u64, n: u64, p: f64) -> Option<f64> {
    if n == 0 || k > n || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let (ki, ni) = (k as i64, n as i64);
    let d = binomial_pmf(ki, n, p);
    let relative_error = 1.0 + 1e-7;
    let mean = p * n as f64;
    let k_float = k as f64;
    let p_value = if k_float == mean {
        1.0
    } else if k_float < mean {
        let ix = binomial_test_search(|x| -binomial_pmf(x, n, p), -d * relative_error, mean.ceil() as i64, ni);
        let y = ni - ix + i64::from(d * relative_error == binomial_pmf(ix, n, p));
        binomial_cdf(ki, n, p) + binomial_sf(ni - y, n, p)
    } else {
        let ix = binomial_test_search(|x| binomial_pmf(x, n, p), d * relative_error, 0, mean.floor() as i64);
        let y = ix + 1;
        binomial_cdf(y - 1, n, p) + binomial_sf(ki - 1, n, p)
    };
    Some(p_value.min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, relative: f64) -> bool {
        (a - b).abs() <= relative * b.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn ln_gamma_matches_known_values() {
        assert!(close(ln_gamma(1.0), 0.0_f64.max(1e-300), 1.0) || ln_gamma(1.0).abs() < 1e-15);
        assert!(ln_gamma(2.0).abs() < 1e-15);
        assert!(close(ln_gamma(0.5), 0.5 * std::f64::consts::PI.ln(), 1e-15));
        // ln(10!) = ln 3628800.
        assert!(close(ln_gamma(11.0), 3_628_800.0_f64.ln(), 1e-15));
        assert!(close(ln_gamma(100.0), 359.134_205_369_575_4, 1e-15));
    }

    #[test]
    fn beta_inc_is_symmetric_and_inverse_round_trips() {
        for &(a, b, x) in &[(0.5, 0.5, 0.3), (2.0, 3.0, 0.4), (10.5, 1000.5, 0.01), (1e5, 2e5, 0.33)] {
            let i = beta_inc(a, b, x);
            assert!(close(i + beta_inc(b, a, 1.0 - x), 1.0, 1e-13), "{a} {b} {x}");
            assert!(close(beta_ppf(i, a, b), x, 1e-11), "{a} {b} {x}");
        }
        // I_x(1, 1) = x, I_x(a, 1) = x^a.
        assert!(close(beta_inc(1.0, 1.0, 0.25), 0.25, 1e-15));
        assert!(close(beta_inc(3.0, 1.0, 0.5), 0.125, 1e-14));
    }

    #[test]
    fn binomial_distribution_adds_up() {
        let (n, p) = (50, 0.3);
        let total: f64 = (0..=50).map(|k| binomial_pmf(k, n, p)).sum();
        assert!(close(total, 1.0, 1e-13));
        let cdf: f64 = (0..=10).map(|k| binomial_pmf(k, n, p)).sum();
        assert!(close(binomial_cdf(10, n, p), cdf, 1e-12));
        assert!(close(binomial_sf(10, n, p), 1.0 - cdf, 1e-12));
        assert_eq!(binomial_test_two_sided(15, 50, 0.3), Some(1.0));
        assert_eq!(binomial_test_two_sided(0, 0, 0.3), None);
    }
}
