#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rdpele_proto::fuzzing::security_exchange(data));
