//! Ingesting sources into the evidence library: validation, normalisation, the content hash,
//! tier classification, documents with TOML front matter, and the bundled demo library. What
//! comes out is a [`NewDocument`] ready to store; storing it is the caller's (the daemon's
//! store), so this module knows no database.

use crate::document::{self, Block, BlockKind};
use crate::ports::NewDocument;
use crate::tiers::TierRules;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Longest title accepted.
pub const MAX_TITLE_CHARS: usize = 500;
/// Largest source text accepted as text (JSON, Markdown), in bytes.
pub const MAX_TEXT_BYTES: usize = 2 * 1024 * 1024;
/// Largest text extracted from a document (a 1,000-page PDF is about 3 MB of text).
pub const MAX_DOCUMENT_TEXT_BYTES: usize = 16 * 1024 * 1024;

/// A source as a client submits it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    pub title: String,
    pub text: String,
    #[serde(default)]
    pub url: Option<String>,
    /// An explicit tier id; classified from the other fields when absent.
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default)]
    pub year: Option<i32>,
    #[serde(default)]
    pub publication_type: Option<String>,
}

/// Why a source was not ingested: what is wrong with it, in words for the person sending it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// Its metadata or text.
    #[error("{0}")]
    Invalid(String),
    /// The bytes are not what the media type says.
    #[error("{0}")]
    WrongType(String),
    /// The file could not be read (encrypted, no text layer, damaged, a zip bomb).
    #[error("{0}")]
    Unreadable(String),
}

/// The hex SHA-256 of a text.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .trim()
        .to_string()
}

/// An absolute http(s) URL with a host, without white space or control characters: the only
/// URLs the references and documents will render as links.
fn is_web_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A document as read from what a client sent: its metadata (from the request, the front
/// matter or the file) and its blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadDocument {
    /// Title, url, tier, year, publication type; `text` is unused when `blocks` are given.
    pub meta: IngestRequest,
    /// The document's blocks; None: made from `meta.text` as Markdown/text.
    pub blocks: Option<Vec<Block>>,
    pub media_type: &'static str,
    pub pages: Option<u32>,
    /// SHA-256 of the original file, when it is kept (PDF, DOCX).
    pub original_sha256: Option<String>,
}

impl ReadDocument {
    /// A document given as text (a JSON source, Markdown, plain text).
    pub fn text(meta: IngestRequest, media_type: &'static str) -> ReadDocument {
        ReadDocument {
            meta,
            blocks: None,
            media_type,
            pages: None,
            original_sha256: None,
        }
    }
}

/// The media types a source may be sent as.
pub const MEDIA_PDF: &str = "application/pdf";
pub const MEDIA_DOCX: &str =
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// Reads an uploaded PDF or DOCX (the bytes must be what the media type says).
pub fn read_file(
    media_type: &str,
    bytes: &[u8],
    fallback_title: &str,
) -> Result<ReadDocument, IngestError> {
    let (blocks, pages, title, media) = match media_type {
        MEDIA_PDF => {
            if !bytes.starts_with(b"%PDF-") {
                return Err(IngestError::WrongType(
                    "the body is not a PDF (it does not start with %PDF-) though it is sent as application/pdf".into(),
                ));
            }
            let pdf =
                crate::pdf::read(bytes).map_err(|e| IngestError::Unreadable(e.to_string()))?;
            (pdf.blocks, Some(pdf.pages), pdf.title, MEDIA_PDF)
        }
        MEDIA_DOCX => {
            if !bytes.starts_with(b"PK\x03\x04") {
                return Err(IngestError::WrongType(
                    "the body is not a Word document (.docx is a zip archive) though it is sent as a DOCX".into(),
                ));
            }
            let blocks = crate::docx_read::read(bytes)
                .map_err(|e| IngestError::Unreadable(e.to_string()))?;
            (blocks, None, None, MEDIA_DOCX)
        }
        other => {
            return Err(IngestError::WrongType(format!(
                "{other:?} is not a document type this library reads"
            )))
        }
    };
    // The title: the file's own (a first heading, the PDF's metadata), else the file name.
    let heading = blocks
        .iter()
        .find(|b| matches!(b.kind, BlockKind::Heading { .. }))
        .map(|b| b.text.clone());
    let title = title
        .or(heading)
        .unwrap_or_else(|| fallback_title.to_string());
    Ok(ReadDocument {
        meta: IngestRequest {
            title: title.chars().take(MAX_TITLE_CHARS).collect(),
            ..Default::default()
        },
        blocks: Some(blocks),
        media_type: media,
        pages,
        original_sha256: Some(sha256_hex(bytes)),
    })
}

/// Validates and classifies a JSON or text source; the result is ready for the store.
pub fn prepare(
    rules: &TierRules,
    req: IngestRequest,
    demo: bool,
) -> Result<NewDocument, IngestError> {
    prepare_document(rules, ReadDocument::text(req, "text/plain"), demo)
}

/// Validates, classifies and splits a document; the result is ready for the store.
pub fn prepare_document(
    rules: &TierRules,
    doc: ReadDocument,
    demo: bool,
) -> Result<NewDocument, IngestError> {
    let req = doc.meta;
    let bad = |m: String| Err(IngestError::Invalid(m));
    let title = req.title.trim().to_string();
    if title.is_empty() {
        return bad("`title` must not be empty".into());
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return bad(format!(
            "`title` is longer than {MAX_TITLE_CHARS} characters"
        ));
    }
    let blocks = match doc.blocks {
        Some(b) => b,
        None => {
            let text = normalise(&req.text);
            if text.len() > MAX_TEXT_BYTES {
                return bad(format!("`text` is larger than {MAX_TEXT_BYTES} bytes"));
            }
            document::from_markdown(&text)
        }
    };
    let split = document::split(&blocks);
    let text = split.text;
    if text.is_empty() {
        return bad("`text` must not be empty".into());
    }
    if text.len() > MAX_DOCUMENT_TEXT_BYTES {
        return bad(format!(
            "the document's text is larger than {MAX_DOCUMENT_TEXT_BYTES} bytes: split it"
        ));
    }
    if text.contains('\0') || title.contains('\0') {
        return bad("text fields must not contain NUL characters".into());
    }
    let url = non_empty(req.url);
    if url.as_ref().is_some_and(|u| u.len() > 2000) {
        return bad("`url` is longer than 2000 characters".into());
    }
    if let Some(u) = url.as_deref().filter(|u| !is_web_url(u)) {
        let shown: String = u.chars().take(80).collect();
        return bad(format!(
            "the source url {shown:?} is not an http or https URL (it is shown as a link); send \
             e.g. https://www.sundhed.dk/..., or leave url out"
        ));
    }
    if let Some(y) = req.year {
        if !(1800..=2100).contains(&y) {
            return bad(format!("`year` {y} is not a publication year"));
        }
    }
    let publication_type = non_empty(req.publication_type);
    let (tier, tier_reason) = match non_empty(req.tier) {
        Some(t) => {
            if rules.get(&t).is_none() {
                let known: Vec<&str> = rules.ids().collect();
                return bad(format!("unknown tier {t:?}; one of {}", known.join(", ")));
            }
            (t, "explicit".to_string())
        }
        None => rules.classify(url.as_deref(), publication_type.as_deref(), &title),
    };
    let title_terms = crate::analyze::analyzer().index_text(&title);
    Ok(NewDocument {
        sha256: sha256_hex(text.as_bytes()),
        title,
        url,
        tier,
        tier_reason,
        year: req.year,
        publication_type,
        text,
        demo,
        media_type: doc.media_type.to_string(),
        original_sha256: doc.original_sha256,
        pages: doc.pages,
        title_terms,
        passage_terms: split
            .passages
            .iter()
            .map(|p| crate::features::index_terms(&p.heading, &p.text))
            .collect(),
        passages: split.passages,
    })
}

/// Front matter of a document file (between `+++` lines, TOML).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: Option<String>,
    url: Option<String>,
    tier: Option<String>,
    year: Option<i32>,
    publication_type: Option<String>,
}

/// Reads a Markdown or plain-text document: optional TOML front matter between `+++` lines,
/// then the text. The title is the front matter's, else the first `# ` heading, else
/// `fallback_title` (the file name).
pub fn parse_document(content: &str, fallback_title: &str) -> Result<IngestRequest, IngestError> {
    let content = content.trim_start_matches('\u{feff}');
    let (front, body) = match content
        .strip_prefix("+++\n")
        .or_else(|| content.strip_prefix("+++\r\n"))
    {
        Some(rest) => match rest.find("\n+++") {
            Some(end) => {
                let fm: FrontMatter = toml::from_str(&rest[..end])
                    .map_err(|e| IngestError::Invalid(format!("front matter: {e}")))?;
                let body = rest[end + 4..].trim_start_matches(['\r', '\n']);
                (fm, body)
            }
            None => {
                return Err(IngestError::Invalid(
                    "front matter opened with +++ is never closed".into(),
                ))
            }
        },
        None => (FrontMatter::default(), content),
    };
    let heading = body
        .lines()
        .find_map(|l| l.strip_prefix("# ").map(|h| h.trim().to_string()));
    Ok(IngestRequest {
        title: front
            .title
            .or(heading)
            .unwrap_or_else(|| fallback_title.to_string()),
        text: body.to_string(),
        url: front.url,
        tier: front.tier,
        year: front.year,
        publication_type: front.publication_type,
    })
}

/// Reads an HTML document as text (html2text, without markup or link footnotes). The
/// title is `fallback_title` when given, else the document's first line of text (its first
/// heading, as a rule).
pub fn parse_html(content: &[u8], fallback_title: &str) -> Result<IngestRequest, IngestError> {
    // html2text's cost grows with the square of the nesting depth (40,000 nested `<div>`s took
    // 8 s, 150,000 minutes): refuse absurd nesting before parsing.
    let depth = html_depth(content);
    if depth > MAX_HTML_DEPTH {
        return Err(IngestError::Invalid(format!(
            "the HTML nests elements {depth} deep (at most {MAX_HTML_DEPTH}); send the document as text or Markdown"
        )));
    }
    // The trivial decorator adds no markup: no "# " headings, no "[link]" brackets.
    let text = html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .link_footnotes(false)
        .string_from_read(content, 100_000)
        .map_err(|e| IngestError::Invalid(format!("cannot read the HTML: {e}")))?;
    let first_line = text
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .chars()
        .take(MAX_TITLE_CHARS)
        .collect::<String>();
    let title = if fallback_title.trim().is_empty() {
        first_line
    } else {
        fallback_title.to_string()
    };
    Ok(IngestRequest {
        title,
        text,
        ..Default::default()
    })
}

/// Deepest element nesting accepted in an HTML upload. Real documents nest tens deep.
pub const MAX_HTML_DEPTH: usize = 512;

/// Elements that never have content, or whose end tag may be left out (HTML closes them by
/// itself): they do not count towards the nesting depth.
const HTML_NOT_NESTING: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead",
    "tbody", "tfoot", "colgroup", "caption", "rp", "rt", "html", "head", "body",
];

/// The deepest nesting of HTML elements in `content`, from a linear scan of its tags (no
/// parse): open tags deepen, end tags close, comments and declarations are skipped.
pub fn html_depth(content: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while let Some(off) = content[i..].iter().position(|&b| b == b'<') {
        i += off + 1;
        let rest = &content[i..];
        if rest.starts_with(b"!--") {
            i += rest
                .windows(3)
                .position(|w| w == b"-->")
                .map_or(rest.len(), |p| p + 3);
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_start = usize::from(closing);
        let name: String = rest[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .map(|b| b.to_ascii_lowercase() as char)
            .collect();
        if name.is_empty() || HTML_NOT_NESTING.contains(&name.as_str()) {
            continue;
        }
        let end = rest.iter().position(|&b| b == b'>').unwrap_or(rest.len());
        let self_closing = end > 0 && rest[end - 1] == b'/';
        if closing {
            depth = depth.saturating_sub(1);
        } else if !self_closing {
            depth += 1;
            deepest = deepest.max(depth);
        }
        i += end;
    }
    deepest
}

/// The bundled demonstration library (`etc/demo_library/`): short texts written for this
/// project to show the pipeline working. Not clinical guidance.
pub const DEMO_LIBRARY: &[(&str, &str)] = &[
    (
        "anafylaksi-sst-vejledning.md",
        include_str!("../../etc/demo_library/anafylaksi-sst-vejledning.md"),
    ),
    (
        "anafylaksi-regionh-instruks.md",
        include_str!("../../etc/demo_library/anafylaksi-regionh-instruks.md"),
    ),
    (
        "anaphylaxis-nice-guideline.md",
        include_str!("../../etc/demo_library/anaphylaxis-nice-guideline.md"),
    ),
    (
        "anaphylaxis-who-emergency-care.md",
        include_str!("../../etc/demo_library/anaphylaxis-who-emergency-care.md"),
    ),
    (
        "anaphylaxis-cochrane-review.md",
        include_str!("../../etc/demo_library/anaphylaxis-cochrane-review.md"),
    ),
    (
        "anaphylaxis-observational-biphasic.md",
        include_str!("../../etc/demo_library/anaphylaxis-observational-biphasic.md"),
    ),
    (
        "pleuradraen-regionh-instruks.md",
        include_str!("../../etc/demo_library/pleuradraen-regionh-instruks.md"),
    ),
    (
        "pleural-drain-ers-statement.md",
        include_str!("../../etc/demo_library/pleural-drain-ers-statement.md"),
    ),
    (
        "pleural-drain-ultrasound-review.md",
        include_str!("../../etc/demo_library/pleural-drain-ultrasound-review.md"),
    ),
    (
        "pleural-drain-small-bore-rct.md",
        include_str!("../../etc/demo_library/pleural-drain-small-bore-rct.md"),
    ),
    (
        "pleural-drain-cohort-complications.md",
        include_str!("../../etc/demo_library/pleural-drain-cohort-complications.md"),
    ),
    (
        "pleural-drain-case-report.md",
        include_str!("../../etc/demo_library/pleural-drain-case-report.md"),
    ),
];

/// The demo library's documents, ready to store. The daemon stores them into an empty library
/// only (so a department's own library is never mixed with demo material after the first
/// start).
pub fn demo_documents(rules: &TierRules) -> Result<Vec<NewDocument>, IngestError> {
    DEMO_LIBRARY
        .iter()
        .map(|(file, content)| {
            let doc = ReadDocument::text(parse_document(content, file)?, "text/markdown");
            prepare_document(rules, doc, true)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_nesting_is_measured_and_absurd_nesting_is_refused_before_parsing() {
        assert_eq!(
            html_depth(b"<html><body><p>a<p>b<div><span>x</span></div></body></html>"),
            2
        );
        assert_eq!(html_depth(b"<!-- <div><div> --><br/><img src=x><div/>"), 0);
        let deep = "<div>".repeat(40_000);
        let t = std::time::Instant::now();
        let err = parse_html(deep.as_bytes(), "").unwrap_err();
        assert!(err.to_string().contains("40000 deep"), "{err}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            t.elapsed()
        );
        let ok = format!("{}text{}", "<div>".repeat(100), "</div>".repeat(100));
        assert!(parse_html(ok.as_bytes(), "t").is_ok());
    }

    #[test]
    fn html_is_read_as_text_with_its_first_heading_as_the_title() {
        let html = b"<html><head><title>t</title><style>p{}</style></head><body><h1>Pleural drains</h1><p>Use <a href='https://x'>ultrasound</a> guidance.</p><script>x()</script></body></html>";
        let d = parse_html(html, "").unwrap();
        assert_eq!(d.title, "Pleural drains");
        assert!(d.text.contains("Use ultrasound guidance."), "{:?}", d.text);
        assert!(
            !d.text.contains("x()") && !d.text.contains("https://x"),
            "{:?}",
            d.text
        );
        assert_eq!(parse_html(html, "Given").unwrap().title, "Given");
    }

    #[test]
    fn documents_take_their_metadata_from_front_matter_or_their_heading() {
        let d = parse_document(
            "+++\ntitle = \"T\"\nurl = \"https://nice.org.uk/x\"\nyear = 2021\n+++\nBody.\n",
            "f.md",
        )
        .unwrap();
        assert_eq!(
            (d.title.as_str(), d.url.as_deref(), d.year, d.text.as_str()),
            ("T", Some("https://nice.org.uk/x"), Some(2021), "Body.\n")
        );
        let d = parse_document("# Heading here\n\nText", "f.md").unwrap();
        assert_eq!(d.title, "Heading here");
        let d = parse_document("plain", "notes.txt").unwrap();
        assert_eq!(d.title, "notes.txt");
        assert!(parse_document("+++\ntitle = \"T\"\nBody", "f").is_err());
        assert!(parse_document("+++\ncolour = 1\n+++\nBody", "f").is_err());
        // Absurd nesting in the front matter is an error, not a stack overflow.
        let deep = format!("+++\nx = {}\n+++\nbody", "[".repeat(200_000));
        assert!(parse_document(&deep, "f").is_err());
    }
}
