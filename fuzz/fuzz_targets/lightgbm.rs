//! Fuzzes the importer of a LightGBM text model, then scores whatever it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riskserve_model::Format;

fuzz_target!(|data: &[u8]| riskserve_fuzz::import_and_score(data, Some(Format::Lightgbm)));
