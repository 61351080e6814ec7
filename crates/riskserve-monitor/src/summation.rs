//! Compensated (Neumaier) summation, so streamed means do not drift with the number of rows.

use serde::{Deserialize, Serialize};

/// A running sum with Neumaier's compensation: the result is the exactly rounded sum in all but contrived cases,
/// independent of the order rows arrive in (a plain f64 sum over 10 million rows can lose 6 digits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    /// Adds one term.
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    /// The sum so far.
    pub fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}
