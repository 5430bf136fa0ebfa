//! The verifier's behaviour, one check kind at a time, on small procedures.

use super::*;

fn passages() -> Vec<CitedText> {
    vec![
        CitedText {
            source_id: "SRC0001".into(),
            page: Some(12),
            text: "Adrenalin er førstevalgsbehandling ved anafylaksi og gives intramuskulært i lårets anterolaterale side. Voksne får 0,5 mg adrenalin intramuskulært, svarende til 0,5 ml af 1 mg/ml. Dosis gentages efter 5 minutter, hvis der ikke er bedring. Antihistamin og glukokortikoid er tillægsbehandling og må ikke forsinke adrenalin.".into(),
        },
        CitedText {
            source_id: "SRC0002".into(),
            page: None,
            text: "The adult dose of intramuscular adrenaline is 0.5 mg of a 1 mg/ml solution, and it may be repeated every 5 minutes if there is no improvement. Blood samples for mast cell tryptase should be taken within 1 to 2 hours of the start of symptoms. Children aged 6 to 12 years receive 0.3 mg intramuscularly.".into(),
        },
        CitedText {
            source_id: "SRC0003".into(),
            page: Some(3),
            text: "Indikationer for pleuradræn er symptomgivende pneumothorax og empyem. Relative kontraindikationer er koagulopati og behandling med antikoagulantia. Huden desinficeres, og der gives lokalbedøvelse ned til pleura. Drænet fikseres med sutur. Efter anlæggelse tages røntgen af thorax for at kontrollere drænets placering.".into(),
        },
    ]
}

fn run(body: &str) -> Verification {
    let p = passages();
    let md = format!("# Test\n\n> Notice.\n\n{body}");
    verify(&md, &Evidence { passages: &p }, &Lexicon::embedded())
}

fn blocking_kinds(v: &Verification) -> Vec<FindingKind> {
    v.findings
        .iter()
        .filter(|f| f.severity == Severity::Blocking)
        .map(|f| f.kind)
        .collect()
}

#[test]
fn a_faithful_sentence_passes_and_is_bound_to_its_page() {
    let v = run("## Procedure (trin-for-trin)\n\n1. Voksne får 0,5 mg adrenalin intramuskulært i låret. [S:SRC0001]\n");
    assert_eq!(v.blocking, 0, "{:#?}", v.findings);
    let s = &v.sentences[0];
    assert_eq!(s.supported_by[0].source_id, "SRC0001");
    assert_eq!(s.supported_by[0].page, Some(12));
    assert!(s.supported_by[0]
        .passage_sentence
        .starts_with("Voksne får 0,5 mg"));
}

#[test]
fn a_danish_translation_of_an_english_passage_passes() {
    let v = run("## Procedure (trin-for-trin)\n\n1. Voksne får 500 mikrogram adrenalin i.m. (1 mg/ml), og dosis kan gentages hvert 5. minut ved manglende bedring. [S:SRC0002]\n");
    assert_eq!(v.blocking, 0, "{:#?}", v.findings);
}

#[test]
fn a_tenfold_dose_and_a_unit_change_block() {
    let v = run("## Procedure (trin-for-trin)\n\n1. Voksne får 5 mg adrenalin intramuskulært. [S:SRC0001]\n");
    let f = v
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Dose)
        .expect("dose finding");
    assert!(f.what.contains("5 mg vs 0,5 mg"), "{}", f.what);
    assert_eq!(
        f.aligned.as_ref().map(|a| a.source_id.as_str()),
        Some("SRC0001")
    );
    let u = run("## Procedure (trin-for-trin)\n\n1. Voksne får 0,5 µg adrenalin intramuskulært. [S:SRC0001]\n");
    assert!(
        blocking_kinds(&u).contains(&FindingKind::Unit),
        "{:#?}",
        u.findings
    );
}

#[test]
fn a_swapped_route_blocks() {
    let v = run(
        "## Procedure (trin-for-trin)\n\n1. Voksne får 0,5 mg adrenalin intravenøst. [S:SRC0001]\n",
    );
    let f = v
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Route)
        .expect("route");
    assert!(
        f.what.contains("intravenøst vs intramuskulært"),
        "{}",
        f.what
    );
}

#[test]
fn an_added_or_removed_negation_blocks() {
    let added = run("## Key Points\n\nAdrenalin gives ikke intramuskulært i lårets anterolaterale side. [S:SRC0001]\n");
    assert!(blocking_kinds(&added).contains(&FindingKind::Negation));
    let removed = run("## Key Points\n\nAntihistamin og glukokortikoid er tillægsbehandling og må forsinke adrenalin. [S:SRC0001]\n");
    assert!(blocking_kinds(&removed).contains(&FindingKind::Negation));
    let kept = run("## Key Points\n\nAntihistamines and glucocorticoids må ikke forsinke adrenalin, da de er tillægsbehandling. [S:SRC0001]\n");
    assert!(
        !blocking_kinds(&kept).contains(&FindingKind::Negation),
        "{:#?}",
        kept.findings
    );
}

#[test]
fn a_swapped_or_dropped_population_blocks() {
    let swapped = run("## Procedure (trin-for-trin)\n\n1. Børn får 0,5 mg adrenalin intramuskulært. [S:SRC0001]\n");
    assert!(
        blocking_kinds(&swapped).contains(&FindingKind::Population),
        "{:#?}",
        swapped.findings
    );
    let paired = run("## Procedure (trin-for-trin)\n\n1. Børn på 6-12 år får 0,5 mg adrenalin intramuskulært. [S:SRC0002]\n");
    assert!(
        blocking_kinds(&paired).contains(&FindingKind::Population),
        "{:#?}",
        paired.findings
    );
    let right = run("## Procedure (trin-for-trin)\n\n1. Børn på 6-12 år får 0,3 mg adrenalin intramuskulært. [S:SRC0002]\n");
    assert_eq!(right.blocking, 0, "{:#?}", right.findings);
}

#[test]
fn changed_timing_blocks() {
    let value = run("## Procedure (trin-for-trin)\n\n1. Dosis gentages efter 15 minutter, hvis der ikke er bedring. [S:SRC0001]\n");
    assert!(
        blocking_kinds(&value).contains(&FindingKind::Timing),
        "{:#?}",
        value.findings
    );
    let qualifier =
        run("## Monitorering\n\nTryptase tages efter 1-2 timer fra symptomdebut. [S:SRC0002]\n");
    assert!(
        blocking_kinds(&qualifier).contains(&FindingKind::Timing),
        "{:#?}",
        qualifier.findings
    );
    let ok = run("## Monitorering\n\nBlodprøve til tryptase tages inden for 1-2 timer fra symptomdebut. [S:SRC0002]\n");
    assert!(
        !blocking_kinds(&ok).contains(&FindingKind::Timing),
        "{:#?}",
        ok.findings
    );
}

#[test]
fn a_different_drug_blocks() {
    let v = run("## Procedure (trin-for-trin)\n\n1. Voksne får 0,5 mg noradrenalin intramuskulært. [S:SRC0001]\n");
    assert!(
        blocking_kinds(&v).contains(&FindingKind::Drug),
        "{:#?}",
        v.findings
    );
}

#[test]
fn conflicting_doses_within_a_draft_block() {
    let v = run("## Key Points\n\nVoksne får 0,5 mg adrenalin intramuskulært. [S:SRC0001]\n\n## Procedure (trin-for-trin)\n\n1. Voksne får 0,3 mg adrenalin intramuskulært. [S:SRC0002]\n");
    assert!(
        blocking_kinds(&v).contains(&FindingKind::ConflictingDose),
        "{:#?}",
        v.findings
    );
}

#[test]
fn citations_that_do_not_resolve_or_are_missing_block() {
    let unknown = run("## Key Points\n\nAdrenalin gives intramuskulært. [S:SRC0042]\n");
    assert!(blocking_kinds(&unknown).contains(&FindingKind::UnknownSource));
    let uncited = run("## Key Points\n\nAdrenalin 0,5 mg gives intramuskulært.\n");
    assert!(blocking_kinds(&uncited).contains(&FindingKind::UncitedClinical));
    let two = run("## Key Points\n\nAdrenalin gives i låret. Dosis er 0,5 mg. [S:SRC0001]\n");
    assert!(
        blocking_kinds(&two).contains(&FindingKind::UncitedClinical),
        "{:#?}",
        two.findings
    );
}

#[test]
fn indications_and_contraindications_do_not_trade_places() {
    let v = run("## Indikationer\n\nRelative kontraindikationer er koagulopati og behandling med antikoagulantia. [S:SRC0003]\n");
    assert!(blocking_kinds(&v).contains(&FindingKind::SectionContradiction));
    let w = run("## Kontraindikationer\n\nIndikationer for pleuradræn er symptomgivende pneumothorax og empyem. [S:SRC0003]\n");
    assert!(blocking_kinds(&w).contains(&FindingKind::SectionContradiction));
    let ok = run("## Kontraindikationer\n\nKoagulopati og antikoagulerende behandling er relative kontraindikationer. [S:SRC0003]\n");
    assert!(
        !blocking_kinds(&ok).contains(&FindingKind::SectionContradiction),
        "{:#?}",
        ok.findings
    );
}

#[test]
fn a_step_before_the_one_it_follows_blocks() {
    let v = run("## Procedure (trin-for-trin)\n\n1. Efter anlæggelsen tages røntgen af thorax for at kontrollere placeringen. [S:SRC0003]\n2. Huden desinficeres, og der gives lokalbedøvelse ned til pleura. [S:SRC0003]\n");
    assert!(
        blocking_kinds(&v).contains(&FindingKind::StepOrder),
        "{:#?}",
        v.findings
    );
    let ok = run("## Procedure (trin-for-trin)\n\n1. Huden desinficeres, og der gives lokalbedøvelse ned til pleura. [S:SRC0003]\n2. Efter anlæggelsen tages røntgen af thorax for at kontrollere placeringen. [S:SRC0003]\n");
    assert!(!blocking_kinds(&ok).contains(&FindingKind::StepOrder));
}

#[test]
fn a_citation_to_an_unrelated_source_blocks_and_weak_support_warns() {
    let v = run("## Udstyr og Forberedelse\n\nHuden desinficeres, og der gives lokalbedøvelse ned til pleura. [S:SRC0002]\n");
    assert!(v.blocking > 0, "{:#?}", v.findings);
}

#[test]
fn english_sentences_empty_sections_and_hidden_markup_are_reported() {
    let v = run("## Key Points\n\nAdrenaline is the first-line treatment and should be given into the thigh. [S:SRC0001]\n\n## Indikationer\n\n_Ingen evidens i kilderne._\n\n> Voksne får 5 mg adrenalin i.v. [S:SRC0001]\n");
    let kinds: Vec<FindingKind> = v.findings.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&FindingKind::EnglishSentence), "{kinds:?}");
    assert!(
        kinds.contains(&FindingKind::EmptySection) || kinds.contains(&FindingKind::HiddenMarkup)
    );
    assert!(blocking_kinds(&v).contains(&FindingKind::HiddenMarkup));
    assert!(
        blocking_kinds(&v).contains(&FindingKind::Dose),
        "hidden content is still checked"
    );
    assert_eq!(FindingKind::ConflictingDose.name(), "conflicting_dose");
    let json = serde_json::to_string(&v).expect("serialises");
    assert!(json.contains("\"kind\":\"hidden_markup\""));
}

#[test]
fn the_verdict_is_deterministic_and_hostile_input_is_harmless() {
    let body = "## Key Points\n\nVoksne får 0,5 mg adrenalin intramuskulært. [S:SRC0001]\n";
    assert_eq!(run(body), run(body));
    let p = passages();
    let huge = "Adrenalin 0,5 mg [S:SRC0001] ".repeat(5_000);
    for md in [
        "",
        "[[[[",
        "## Key Points\n\n🙂🙂 [S:SRC0001] \u{0}",
        huge.as_str(),
        "## Key Points\n\n1:0 mg/ml 0:1000 1-0 mg [S:SRC0001]",
    ] {
        let _ = verify(md, &Evidence { passages: &p }, &Lexicon::embedded());
    }
    let odd = [CitedText {
        source_id: "SRC0001".into(),
        page: None,
        text: "\u{0}[[(( 1:0 ".repeat(100),
    }];
    let _ = verify(body, &Evidence { passages: &odd }, &Lexicon::embedded());
    let none: [CitedText; 0] = [];
    assert!(verify(body, &Evidence { passages: &none }, &Lexicon::embedded()).blocking > 0);
}

#[test]
fn a_drug_volume_needs_the_strength_its_source_gives() {
    let bare = run("## Procedure (trin-for-trin)\n\n1. Voksne får 0,5 ml adrenalin intramuskulært. [S:SRC0001]\n");
    assert!(
        blocking_kinds(&bare).contains(&FindingKind::Unit),
        "{:#?}",
        bare.findings
    );
    let with = run("## Procedure (trin-for-trin)\n\n1. Voksne får 0,5 mg adrenalin intramuskulært, dvs. 0,5 ml af 1 mg/ml. [S:SRC0001]\n");
    assert_eq!(with.blocking, 0, "{:#?}", with.findings);
}

#[test]
fn a_citation_to_a_source_that_does_not_say_it_blocks_even_on_the_same_topic() {
    // SRC0002 is about adrenaline too, but says nothing of the thigh.
    let moved = run("## Anatomi og orientering\n\nAdrenalin gives intramuskulært i lårets anterolaterale side. [S:SRC0002]\n");
    let f = moved
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Unsupported)
        .expect("unsupported");
    assert!(f.what.contains("lårets"), "{}", f.what);
    assert_eq!(f.severity, Severity::Blocking);
    let own = run("## Anatomi og orientering\n\nAdrenalin gives intramuskulært i lårets anterolaterale side. [S:SRC0001]\n");
    assert_eq!(own.blocking, 0, "{:#?}", own.findings);
    // A faithful translation names the same terms through the lexicon.
    let translated = run("## Monitorering\n\nBlodprøve til tryptase tages inden for 1-2 timer efter symptomdebut. [S:SRC0002]\n");
    assert_eq!(translated.blocking, 0, "{:#?}", translated.findings);
}

#[test]
fn a_unit_changed_into_one_the_source_gives_elsewhere_blocks() {
    let v = run("## Procedure (trin-for-trin)\n\n1. Voksne får 0,5 ml adrenalin intramuskulært, svarende til 0,5 ml af 1 mg/ml. [S:SRC0001]\n");
    assert!(
        blocking_kinds(&v).contains(&FindingKind::Unit),
        "{:#?}",
        v.findings
    );
}

#[test]
fn a_negated_contraindication_or_a_prohibition_under_indications_blocks() {
    let p = vec![CitedText {
        source_id: "SRC0001".into(),
        page: None,
        text: "Der findes ingen absolutte kontraindikationer for intramuskulær adrenalin ved anafylaksi. Low-molecular-weight heparin should not be given within 12 hours before a lumbar puncture. Adrenalin er indiceret ved anafylaksi.".into(),
    }];
    let check = |body: &str| {
        verify(
            &format!("# T\n\n{body}"),
            &Evidence { passages: &p },
            &Lexicon::embedded(),
        )
    };
    let negated = check("## Indikationer\n\nDer findes ingen absolutte kontraindikationer for intramuskulær adrenalin ved anafylaksi. [S:SRC0001]\n");
    assert!(
        blocking_kinds(&negated).contains(&FindingKind::SectionContradiction),
        "{:#?}",
        negated.findings
    );
    let prohibition = check("## Indikationer\n\nLavmolekylært heparin må ikke gives inden for 12 timer før lumbalpunktur. [S:SRC0001]\n");
    assert!(
        blocking_kinds(&prohibition).contains(&FindingKind::SectionContradiction),
        "{:#?}",
        prohibition.findings
    );
    let indication =
        check("## Indikationer\n\nAdrenalin er indiceret ved anafylaksi. [S:SRC0001]\n");
    assert!(
        !blocking_kinds(&indication).contains(&FindingKind::SectionContradiction),
        "{:#?}",
        indication.findings
    );
}

#[test]
fn a_step_under_indications_is_a_warning_for_a_reviewer() {
    let v = run("## Indikationer\n\nAdrenalin gives intramuskulært i lårets anterolaterale side. [S:SRC0001]\n");
    assert_eq!(v.blocking, 0, "{:#?}", v.findings);
    assert!(
        v.findings
            .iter()
            .any(|f| f.kind == FindingKind::MisplacedSection && f.what.contains("step")),
        "{:#?}",
        v.findings
    );
}

#[test]
fn a_heading_in_a_passage_is_not_read_as_the_start_of_the_sentence_under_it() {
    // A passage's first line is its heading; read as one sentence with the line under it,
    // "Kontraindikationer … Der er ingen … kontraindikationer" counted one negation more than
    // the faithful copy of that line, and blocked it.
    let p = vec![CitedText {
        source_id: "SRC0001".into(),
        page: None,
        text: "Kontraindikationer og forsigtighed\nDer er ingen absolutte kontraindikationer ved livstruende tilstand.\nForsigtighed ved kendt vanskelig luftvej".into(),
    }];
    let md = "# Test\n\n> Notice.\n\n## Kontraindikationer\n\nDer er ingen absolutte kontraindikationer ved livstruende tilstand. [S:SRC0001]\n";
    let v = verify(md, &Evidence { passages: &p }, &Lexicon::embedded());
    assert_eq!(blocking_kinds(&v), vec![], "{:#?}", v.findings);
    // The same sentence with its negation taken away still blocks.
    let md = "# Test\n\n> Notice.\n\n## Kontraindikationer\n\nDer er absolutte kontraindikationer ved livstruende tilstand. [S:SRC0001]\n";
    let v = verify(md, &Evidence { passages: &p }, &Lexicon::embedded());
    assert!(
        blocking_kinds(&v).contains(&FindingKind::Negation),
        "{:#?}",
        v.findings
    );
}

/// The blocking findings of `sentence` as step 1 of a procedure, citing SRC0001.
fn step_blocking(passages: &[CitedText], sentence: &str) -> Vec<FindingKind> {
    let md = format!(
        "# Test\n\n> Notice.\n\n## Procedure (trin-for-trin)\n\n1. {sentence} [S:SRC0001]\n"
    );
    blocking_kinds(&verify(&md, &Evidence { passages }, &Lexicon::embedded()))
}

#[test]
fn a_weight_based_dose_copied_from_a_newborn_passage_passes_and_a_dropped_population_blocks() {
    // A newborn resuscitation table: the passage is about newborns, the row names no one.
    let p = vec![CitedText {
        source_id: "SRC0001".into(),
        page: None,
        text: "Nyfødte med hjertefrekvens under 60 trods ventilation. 7 | Giv adrenalin 20 mikrogram/kg intravenøst; gentag hvert 3.-5. minut.".into(),
    }];
    let check = |sentence: &str| step_blocking(&p, sentence);
    assert_eq!(
        check("Giv adrenalin 20 mikrogram/kg intravenøst; gentag hvert 3.-5. minut."),
        vec![]
    );
    // Another population named in the draft, or another dose, still blocks.
    assert!(check("Voksne får adrenalin 20 mikrogram/kg intravenøst.")
        .contains(&FindingKind::Population));
    assert!(!check("Giv adrenalin 200 mikrogram/kg intravenøst.").is_empty());
    // A dose the source names a population for must say so.
    let p = vec![CitedText {
        source_id: "SRC0001".into(),
        page: None,
        text: "Adrenalin 20 mikrogram/kg intravenøst til nyfødte; 10 mikrogram/kg intravenøst til børn.".into(),
    }];
    assert!(
        step_blocking(&p, "Giv adrenalin 20 mikrogram/kg intravenøst.")
            .contains(&FindingKind::Population)
    );
}

#[test]
fn a_weight_based_dose_neither_side_gives_a_population_for_passes() {
    // Anaesthesia doses adults by weight: a trial's unqualified "rocuronium 1 mg/kg" copied
    // faithfully is not a children's dose the source does not give.
    let p = vec![CitedText {
        source_id: "SRC0001".into(),
        page: None,
        text: "Rocuronium 1,2 mg/kg gives intravenøst ved hurtig sekvens-induktion.".into(),
    }];
    let check = |sentence: &str| step_blocking(&p, sentence);
    assert_eq!(
        check("Rocuronium 1,2 mg/kg gives intravenøst ved hurtig sekvens-induktion."),
        vec![]
    );
    // A population the source does not give still blocks, and so does another dose.
    assert!(
        check("Børn får rocuronium 1,2 mg/kg intravenøst ved hurtig sekvens-induktion.")
            .contains(&FindingKind::Population)
    );
    assert!(
        !check("Rocuronium 0,6 mg/kg gives intravenøst ved hurtig sekvens-induktion.").is_empty()
    );
}

#[test]
fn a_citation_superscript_in_a_pdfs_text_is_no_quantity() {
    // PDF text keeps a citation's superscript digits ("låret ¹²,¹⁴"); a draft that leaves
    // them out states the same dose, and one that reads an exponent as digits does not.
    let p = vec![CitedText {
        source_id: "SRC0001".into(),
        page: Some(3),
        text: "Voksne: giv adrenalin 0,5 mg intramuskulært i låret ¹²,¹⁴ uden forsinkelse. Ved trombocyttal under 50 x 10⁹/L gives ingen intramuskulær injektion.".into(),
    }];
    let check = |sentence: &str| step_blocking(&p, sentence);
    assert_eq!(
        check("Voksne: giv adrenalin 0,5 mg intramuskulært i låret uden forsinkelse."),
        vec![]
    );
    assert!(!check("Voksne: giv adrenalin 12 mg intramuskulært i låret.").is_empty());
    assert!(
        !check("Ved trombocyttal under 50 x 109/L gives ingen intramuskulær injektion.").is_empty()
    );
}
