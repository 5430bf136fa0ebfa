//! The outline of a procedure: the Danish section headings in order, and the words that make a
//! source sentence belong under each (Danish and English, lower case, matched as word prefixes).

/// One section of the outline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub heading: &'static str,
    /// Word prefixes that mark a sentence as belonging here.
    pub cues: &'static [&'static str],
}

pub const CHECKLIST: &str = "Kvalitetstjekliste";
pub const REFERENCES: &str = "Referencer";
pub const PROCEDURE: &str = "Procedure (trin-for-trin)";

/// The outline, in order. The checklist is built from the procedure steps; the references from
/// the citations.
#[rustfmt::skip]
pub const OUTLINE: &[Section] = &[
    Section { heading: "Formål og Målgruppe", cues: &["formål", "purpose", "målgrupp", "gælder", "læger", "sygeplejersk", "aim", "operator"] },
    Section { heading: "Scope og Setting", cues: &["akutmodtag", "setting", "ward", "afdeling", "emergency depart", "all settings", "hospital"] },
    Section { heading: "Key Points", cues: &["førstevalg", "first-line", "recommended", "anbefal", "should not", "må ikke", "uden forsinkelse", "without delay"] },
    Section { heading: "Indikationer", cues: &["indikation", "indication", "suspected", "mistanke", "symptomgivende", "should be suspected"] },
    Section { heading: "Kontraindikationer", cues: &["kontraindikation", "contraindication", "koagulopati", "antikoagul", "coagulopathy"] },
    Section { heading: "Anatomi og orientering", cues: &["anatomi", "triangle", "trekant", "thigh", "lår", "anterolateral", "musculus", "site of insertion"] },
    Section { heading: "Forudsætninger", cues: &["consent", "samtykke", "trained", "supervision", "forudsætning", "operators", "ultralyd", "ultrasound guidance"] },
    Section { heading: "Udstyr og Forberedelse", cues: &["udstyr", "equipment", "steril", "aseptic", "akutvogn", "desinfic", "lokalbedøvelse", "prepared"] },
    Section { heading: PROCEDURE, cues: &["gives", "give", "dose", "dosis", "intramusku", "anlægges", "inserted", "lejres", "lie flat", "repeat", "gentages", "fikseres", "secured", "drained", "forbindes"] },
    Section { heading: "Monitorering", cues: &["monitor", "observ", "puls", "pulse", "blood pressure", "blodtryk", "iltmætning", "saturation", "respirationsfrekvens", "respiratory rate"] },
    Section { heading: "Komplikationer", cues: &["komplikation", "complication", "biphasic", "bifasisk", "oedema", "ødem", "arytmi", "arrhythm", "pneumothorax", "bleeding", "blødning", "malposition", "takykardi"] },
    Section { heading: "Dokumentation og Kommunikation", cues: &["dokumenter", "document", "journal", "information", "henvis", "refer", "discharge", "udskriv", "udlever"] },
    Section { heading: CHECKLIST, cues: &[] },
    Section { heading: REFERENCES, cues: &[] },
];

/// The sections a writer fills from evidence (all but the checklist and the references).
pub fn evidence_sections() -> impl Iterator<Item = &'static Section> {
    OUTLINE
        .iter()
        .filter(|s| s.heading != CHECKLIST && s.heading != REFERENCES)
}
