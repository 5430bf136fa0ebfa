//! The procedure pipeline's domain: what a procedure, a source, a passage, a claim and a
//! citation are; retrieval, the evidence gate, the writers, the evaluator, the quality loop
//! and packaging.
//!
//! It talks to the rest of the system only through its [`ports`]: a [`ports::Library`] to
//! search, a [`ports::Ledger`] of model calls and spending, and a [`ports::Progress`] sink for
//! events and cancellation. It does not depend on the actor runtime or the store at all (the
//! crate has no such dependency), so it cannot know a lease, a queue or SQL.

pub mod abbrev;
pub mod analyze;
pub mod blocking;
pub mod concept;
pub mod document;
pub mod docx;
pub mod docx_read;
pub mod error;
pub mod evaluate;
pub mod evidence;
pub mod features;
pub mod gate;
pub mod library;
pub mod llm;
pub mod llm_writer;
pub mod money;
pub mod offline;
pub mod outline;
pub mod package;
pub mod pdf;
pub mod ports;
pub mod quality;
pub mod retrieve;
pub mod run;
#[doc(hidden)]
pub mod sample_pdf;
pub mod tiers;
pub mod verify;
pub mod writer;

pub use error::PipelineError;
pub use run::{Pipeline, PipelineConfig, RunEnd, RunOptions, RunRequest};
