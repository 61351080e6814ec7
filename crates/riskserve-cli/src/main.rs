//! The `riskserve` binary.
fn main() {}
