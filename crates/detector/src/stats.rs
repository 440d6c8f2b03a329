//! Tail probabilities in log space, so scores stay finite and exact far into the tails.

/// `-log10` of the two-sided Gaussian tail probability `P(|Z| >= z)`.
///
/// Uses the Chebyshev fit of `erfc` by Press et al. (fractional error below 1.2e-7 over
/// the whole real line), written as `t * exp(poly)` so the logarithm is taken without ever
/// forming the tiny probability: a 40-sigma reading gives a large finite surprise, not `inf`.
pub fn surprise_two_sided(z: f64) -> f64 {
    let x = z.abs() * std::f64::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    // erfc(x) = t * exp(poly); P(|Z| >= z) = erfc(z / sqrt 2).
    let ln_p = t.ln() + poly;
    (-ln_p * std::f64::consts::LOG10_E).max(0.0)
}

/// The |z| whose two-sided surprise equals `surprise` (inverse of [`surprise_two_sided`]).
pub fn z_for_surprise(surprise: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 60.0_f64);
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if surprise_two_sided(mid) < surprise {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Cube root of a non-negative `x` to a relative error below 1e-4 (the variance test's
/// statistic needs no more), several times faster than the C library's `cbrtf`, in which
/// the variance test would otherwise spend an eighth of its time. Negative and non-finite
/// inputs give 0.
pub fn cbrt_nonneg(x: f32) -> f32 {
    if !(1e-30..=1e30).contains(&x) {
        // The bit trick below needs a normal exponent, and its cube must not overflow.
        return if x > 0.0 && x.is_finite() { x.cbrt() } else { 0.0 };
    }
    // Dividing the exponent by three gives the root to within a few percent; one Halley
    // step (cubic convergence) takes that to a few parts in a hundred thousand.
    let y = f32::from_bits(x.to_bits() / 3 + 709_921_077);
    let y3 = y * y * y;
    y * ((y3 + 2.0 * x) / (2.0 * y3 + x))
}

/// Per-reading multiplier of an exponentially weighted average with the given half-life
/// (in readings): after `half_life` readings an old value keeps half its weight.
pub fn alpha_for_half_life(half_life: f32) -> f32 {
    1.0 - 0.5_f32.powf(1.0 / half_life)
}

/// Small deterministic random source for synthetic data (SplitMix64 + Box–Muller), so the
/// evaluation and the tests reproduce exactly for a seed without a dependency.
#[derive(Debug, Clone)]
pub struct SplitMix {
    state: u64,
    spare: Option<f64>,
}

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix { state: seed ^ 0x9E37_79B9_7F4A_7C15, spare: None }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn normal(&mut self) -> f64 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare = Some(r * s);
        r * c
    }

    /// Exponentially distributed with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).max(1e-300).ln()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cube_root_matches_the_library_across_the_range() {
        let mut x = 1e-38_f32;
        while x < 1e30 {
            for k in [1.0_f32, 1.37, 2.9, 7.77] {
                let v = x * k;
                let (got, want) = (cbrt_nonneg(v), v.cbrt());
                assert!(((got - want) / want).abs() < 1e-4, "cbrt({v}) = {got}, library {want}");
            }
            x *= 10.0;
        }
        assert_eq!(cbrt_nonneg(0.0), 0.0);
        assert_eq!(cbrt_nonneg(-8.0), 0.0);
        assert_eq!(cbrt_nonneg(f32::NAN), 0.0);
        assert_eq!(cbrt_nonneg(f32::INFINITY), 0.0);
        assert!((cbrt_nonneg(27.0) - 3.0).abs() < 3e-4);
    }

    #[test]
    fn surprise_matches_known_tail_probabilities() {
        // P(|Z| >= 1.959964) = 0.05, P(|Z| >= 3) = 0.0026998, P(|Z| >= 6) = 1.973e-9
        assert!((surprise_two_sided(1.959_964) - 0.05_f64.log10().abs()).abs() < 1e-5);
        assert!((surprise_two_sided(3.0) - 0.002_699_8_f64.log10().abs()).abs() < 1e-4);
        assert!((surprise_two_sided(6.0) - 1.973e-9_f64.log10().abs()).abs() < 1e-3);
        assert!(surprise_two_sided(0.0).abs() < 1e-6);
        assert!(surprise_two_sided(50.0).is_finite());
        assert!(surprise_two_sided(50.0) > 500.0);
    }

    #[test]
    fn z_for_surprise_inverts() {
        for s in [0.5, 2.0, 6.0, 9.5] {
            assert!((surprise_two_sided(z_for_surprise(s)) - s).abs() < 1e-6);
        }
    }

    #[test]
    fn alpha_halves_weight_after_half_life() {
        let a = alpha_for_half_life(10.0);
        assert!(((1.0 - a).powi(10) - 0.5).abs() < 1e-5);
    }
}
