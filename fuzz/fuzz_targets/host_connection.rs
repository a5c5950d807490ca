#![no_main]

libfuzzer_sys::fuzz_target!(
    init: rdpele_emulator::session_host::fuzzing::init(),
    |data: &[u8]| rdpele_emulator::session_host::fuzzing::host_connection(data)
);
