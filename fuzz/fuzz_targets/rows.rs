//! Fuzzes the row decoder (header mapping and cell parsing) with the input read as CSV-like text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| riskserve_fuzz::decode_rows(data));
