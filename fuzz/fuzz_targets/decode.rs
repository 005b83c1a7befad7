#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocpp::fuzzing::exercise_decoder(data));
