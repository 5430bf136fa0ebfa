//! The evidence gate: do the retrieved sources cover the required tiers?

use crate::writer::EvidenceSource;
use serde::Serialize;
use std::collections::BTreeMap;

/// What to do when a required tier is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Fail the run, listing what is missing (the default).
    Strict,
    /// Pause the run in NEEDS_ACK until a person acknowledges the gap.
    AllowWithAck,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "STRICT" | "strict" => Some(Policy::Strict),
            "allow_with_ack" => Some(Policy::AllowWithAck),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Strict => "STRICT",
            Policy::AllowWithAck => "allow_with_ack",
        }
    }
}

/// What the gate found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    pub required_tiers: Vec<String>,
    pub missing_tiers: Vec<String>,
    /// Tier → ids of the retrieved sources in it.
    pub found: BTreeMap<String, Vec<String>>,
}

pub fn check(required: &[String], sources: &[EvidenceSource]) -> GateReport {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in sources {
        found.entry(s.tier.clone()).or_default().push(s.id.clone());
    }
    let missing = required
        .iter()
        .filter(|t| !found.contains_key(*t))
        .cloned()
        .collect();
    GateReport {
        required_tiers: required.to_vec(),
        missing_tiers: missing,
        found,
    }
}

impl GateReport {
    /// One line for a failed run: each missing tier, and what was found per tier.
    pub fn failure_message(&self) -> String {
        let found = if self.found.is_empty() {
            "no sources".to_string()
        } else {
            self.found
                .iter()
                .map(|(t, ids)| format!("{t}: {}", ids.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        };
        format!(
            "evidence gate (STRICT): missing required tiers: {}. Found: {found}. Add sources of \
             those tiers to the library, or resubmit with missing_tier_policy = \"allow_with_ack\"",
            self.missing_tiers.join(", ")
        )
    }
}
