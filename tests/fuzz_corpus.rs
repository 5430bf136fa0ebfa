//! The fuzz corpus, replayed on stable with the tests: every input in `fuzz/seeds/http_request`
//! (one or more requests per route, valid and hostile) and `fuzz/corpus/http_request` (what
//! libFuzzer kept or found) goes through the same harness as the fuzz
//! target — one in-process daemon, raw bytes over loopback — and must get a well-formed answer
//! with no panic anywhere. A crash the fuzzer finds is committed here as a regression.

use procedurewriter::fuzzing;

#[test]
fn every_input_of_the_fuzz_corpus_gets_a_well_formed_answer_and_nothing_panics() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut inputs = Vec::new();
    for dir in ["seeds/http_request", "corpus/http_request"] {
        let dir = fuzz.join(dir);
        let files = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        inputs.extend(files.map(|e| e.unwrap().path()));
    }
    inputs.sort();
    assert!(
        inputs.len() >= 1000,
        "the corpus lost its inputs: {}",
        inputs.len()
    );
    let before = fuzzing::panics();
    for path in &inputs {
        fuzzing::http_request(&std::fs::read(path).unwrap());
    }
    assert_eq!(fuzzing::panics(), before, "a panic inside the daemon");
    // Still serving after all of it.
    fuzzing::http_request(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
}
