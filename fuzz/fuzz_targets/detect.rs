//! Fuzzes format detection and whichever importer it picks, then scores whatever is accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| riskserve_fuzz::import_and_score(data, None));
