//! What the criterion benches share: a seeded generator and synthetic credit-like rows.

/// Features per row, as in the side-by-side scripts' synthetic data.
pub const NUM_FEATURES: usize = 30;

/// SplitMix64: small, seedable and good enough to make varied trees.
pub struct Random(pub u64);

impl Random {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.uniform() * bound as f64) as usize % bound.max(1)
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Draws rows whose columns look like credit-risk features: amounts (log-normal), scores
/// (normal), counts (small integers), flags (0/1) and ratios (uniform), a few of them with
/// missing values.
pub fn synthetic_rows(random: &mut Random, count: usize) -> Vec<f64> {
    let mut rows = Vec::with_capacity(count * NUM_FEATURES);
    for _ in 0..count {
        for feature in 0..NUM_FEATURES {
            let value = match feature % 5 {
                0 => 600.0 + 80.0 * random.normal(),
                1 => (8.0 + 1.2 * random.normal()).exp(),
                2 => random.below(12) as f64,
                3 => f64::from(u8::from(random.uniform() < 0.3)),
                _ => random.uniform(),
            };
            let missing_rate = if has_missing_values(feature) { 0.05 + 0.01 * (feature % 5) as f64 } else { 0.0 };
            rows.push(if random.uniform() < missing_rate { f64::NAN } else { value });
        }
    }
    rows
}

/// Five of the thirty features have 5-9 % missing values.
pub fn has_missing_values(feature: usize) -> bool {
    feature % 6 == 1
}
