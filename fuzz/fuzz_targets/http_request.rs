//! Raw bytes as HTTP requests to one in-process daemon (see `procedurewriter::fuzzing`): any
//! panic in the daemon, a 5xx, an error without the JSON error body, or no answer is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    procedurewriter::fuzzing::http_request(data);
});
