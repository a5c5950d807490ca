#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rdpele_proto::fuzzing::server_machine(data));
