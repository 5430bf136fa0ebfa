//! The procedure pipeline's domain: the evidence library and its tiers. It knows what a tier
//! means; the store (in `procedurewriter-actors`) only keeps and ranks documents with a tier
//! label, and the daemon only moves requests in and JSON out.

pub mod docx;
pub mod evaluate;
pub mod gate;
pub mod library;
pub mod llm;
pub mod outline;
pub mod quality;
pub mod runner;
pub mod tiers;
pub mod writer;
pub mod writers;
