//! Generated text for the benchmarks that fill a library: a deterministic stream of clinical
//! words with sentence ends. Included by `#[path]`.

#![allow(dead_code)]

pub const VOCAB: &[&str] = &[
    "patient",
    "behandling",
    "dosis",
    "observation",
    "komplikation",
    "udstyr",
    "monitorering",
    "infektion",
    "smerte",
    "kateter",
    "blodtryk",
    "puls",
    "ilt",
    "væske",
    "antibiotika",
    "sår",
    "fraktur",
    "anæstesi",
    "ultralyd",
    "røntgen",
    "journal",
    "indikation",
    "kontraindikation",
    "trial",
    "cohort",
    "review",
    "guideline",
    "risk",
    "outcome",
    "adults",
    "children",
    "ward",
];

/// `n` pseudo-random words from `seed` (advanced), a sentence end every `every` words.
pub fn words(seed: &mut u64, n: usize, every: usize) -> String {
    let mut out = Vec::with_capacity(n + n / every);
    for i in 0..n {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push(VOCAB[(*seed >> 33) as usize % VOCAB.len()]);
        if i % every == every - 1 {
            out.push("gives.");
        }
    }
    out.join(" ")
}
