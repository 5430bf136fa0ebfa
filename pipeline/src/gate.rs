//! The evidence gate: do the retrieved sources cover the required tiers? And, when they do
//! not and the policy allows it, what a person must acknowledge ([`AckRequest`]) and whether
//! an acknowledgement covers it ([`uncovered`], the one coverage test: the gate and the
//! daemon's ack endpoint both ask it).

use crate::evidence::EvidenceSource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What to do when a required tier is missing (`missing_tier_policy`, in the settings and in
/// a run's options; both parse it here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
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

impl TryFrom<String> for Policy {
    type Error = String;
    fn try_from(s: String) -> Result<Policy, String> {
        Policy::parse(&s).ok_or_else(|| format!("{s:?} is not \"STRICT\" or \"allow_with_ack\""))
    }
}

impl From<Policy> for &'static str {
    fn from(p: Policy) -> &'static str {
        p.as_str()
    }
}

/// What a run paused in `NEEDS_ACK` waits for: stored with the run (`ack_required`) and shown
/// to the person who must acknowledge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckRequest {
    /// The tiers a person must acknowledge, each by name.
    pub missing_tiers: Vec<String>,
    /// Tier → ids of the retrieved sources in it.
    pub found: BTreeMap<String, Vec<String>>,
    pub required_tiers: Vec<String>,
    pub policy: Policy,
}

impl AckRequest {
    /// The missing tiers `acknowledged` leaves uncovered (empty: the acknowledgement covers
    /// the request).
    pub fn uncovered(&self, acknowledged: &[String]) -> Vec<String> {
        uncovered(&self.missing_tiers, acknowledged)
    }
}

/// The one coverage test: the items of `missing` that `acknowledged` does not name.
pub fn uncovered(missing: &[String], acknowledged: &[String]) -> Vec<String> {
    missing
        .iter()
        .filter(|m| !acknowledged.contains(m))
        .cloned()
        .collect()
}

/// An acknowledgement a person gave for a run, as the runner receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Acknowledgement {
    pub acknowledged_by: String,
    pub note: String,
    /// The tiers acknowledged as missing.
    pub tiers: Vec<String>,
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
    /// What a person must acknowledge for the run to go on despite the gaps.
    pub fn ack_request(&self, policy: Policy) -> AckRequest {
        AckRequest {
            missing_tiers: self.missing_tiers.clone(),
            found: self.found.clone(),
            required_tiers: self.required_tiers.clone(),
            policy,
        }
    }

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
