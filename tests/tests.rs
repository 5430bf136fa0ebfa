//! Integration tests: the real `procedurewriter` binary in a temp dir, spoken to over HTTP,
//! signalled, killed and restarted. One module per area; helpers in `support`.

mod support;

mod api_errors;
mod architecture;
mod cli;
mod documents;
mod faults;
mod fuzz_corpus;
mod library;
mod lifecycle;
mod llm_calls;
mod operations;
mod pipeline;
mod quality;
mod real_llm;
mod recovery;
mod retrieval;
mod secrets;
mod security;
mod source_changes;
mod startup;
mod torture;
