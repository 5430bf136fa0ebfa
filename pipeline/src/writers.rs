//! The writer seam: the quality loop asks a [`Writer`] for a first draft and for revisions of
//! the best draft so far, given the evaluator's issues. Two writers: the deterministic offline
//! writer (`crate::writer`, the default, free) and [`LlmWriter`], which asks a model through
//! [`Llm::call`](crate::llm::Llm::call) within the budget it is given.
//!
//! Whatever the model returns, the title, the notices (demonstration material, acknowledged
//! gaps) and the reference list are ours: the model writes the sections, and may cite only the
//! ids of the retrieved sources it was shown (the evaluator penalises any other id, and the
//! next revision is told which).

use crate::llm::{CallResult, Llm, LlmError, Spent, Stage, Step};
use crate::outline::{evidence_sections, CHECKLIST, REFERENCES};
use crate::writer::{self, AckNotice, EvidenceSource};
use futures_util::future::LocalBoxFuture;
use procedurewriter_actors::JobContext;

/// Most characters of each source shown to the model.
pub const SOURCE_CHARS: usize = 3000;

/// What every draft of one run is written from.
#[derive(Debug, Clone, Copy)]
pub struct Brief<'a> {
    pub title: &'a str,
    pub context: &'a str,
    pub sources: &'a [EvidenceSource],
    pub ack: Option<&'a AckNotice>,
    /// The run's attempt (recorded with each call).
    pub attempt: u32,
}

/// What to write: the first draft, or a revision of `previous` that addresses `issues`.
#[derive(Debug, Clone, Copy)]
pub enum Task<'a> {
    Draft,
    Revise {
        previous: &'a str,
        issues: &'a [String],
    },
}

/// A writer's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Drafted {
    Text {
        markdown: String,
        /// Replayed from an earlier attempt of the run (not paid for again).
        reused: bool,
        /// The output limit the call was given (0: no call was made).
        max_tokens: u32,
        /// The model stopped at `max_tokens`.
        truncated: bool,
    },
    /// The next call does not fit in the budget.
    CapReached {
        worst_case_pusd: i64,
    },
    Cancelled,
}

/// Writes drafts of a procedure.
pub trait Writer: Send + Sync {
    /// How manifests name it (`offline-v1`, `openai:gpt-4o`).
    fn name(&self) -> String;

    /// Whether writing `task` fits in `budget` pico-USD: the output limit it would get, or the
    /// worst case of its smallest useful call when it does not fit.
    fn plan(
        &self,
        brief: Brief<'_>,
        task: Task<'_>,
        iteration: u32,
        budget: i64,
    ) -> Result<u32, i64>;

    /// Writes iteration `iteration` (1 = first draft) within `budget` pico-USD (None: no limit).
    fn write<'a>(
        &'a self,
        ctx: &'a JobContext,
        brief: Brief<'a>,
        task: Task<'a>,
        iteration: u32,
        budget: Option<i64>,
    ) -> LocalBoxFuture<'a, Result<Spent<Drafted>, LlmError>>;
}

/// The built-in deterministic writer. A revision cannot differ from the draft (it does not
/// read the issues), so with it the quality loop stops at the first plateau check.
#[derive(Debug, Default, Clone, Copy)]
pub struct OfflineWriter;

impl Writer for OfflineWriter {
    fn name(&self) -> String {
        crate::runner::WRITER.to_string()
    }

    fn plan(&self, _: Brief<'_>, _: Task<'_>, _: u32, _: i64) -> Result<u32, i64> {
        Ok(0)
    }

    fn write<'a>(
        &'a self,
        ctx: &'a JobContext,
        brief: Brief<'a>,
        _task: Task<'a>,
        _iteration: u32,
        _budget: Option<i64>,
    ) -> LocalBoxFuture<'a, Result<Spent<Drafted>, LlmError>> {
        Box::pin(async move {
            let value = if ctx.is_cancelled() {
                Drafted::Cancelled
            } else {
                Drafted::Text {
                    markdown: writer::write(brief.title, brief.sources, brief.ack),
                    reused: false,
                    max_tokens: 0,
                    truncated: false,
                }
            };
            Ok(Spent {
                value,
                cost_pusd: 0,
                attempts: 0,
            })
        })
    }
}

/// Writes with a language model.
pub struct LlmWriter {
    pub llm: Llm,
}

/// The instructions every call gets.
pub fn system_prompt() -> String {
    let headings: Vec<String> = evidence_sections()
        .map(|s| format!("## {}", s.heading))
        .chain(std::iter::once(format!("## {CHECKLIST}")))
        .collect();
    format!(
        "You write clinical procedures in Danish for a hospital department, using only the \
         sources you are given.\n\
         Rules:\n\
         1. Write exactly these sections, as Markdown level-2 headings, in this order:\n{}\n\
         2. Every sentence and every list item under a heading ends with the citation of the \
         source that supports it, in the form [S:SRC0001]. Cite only the ids of the sources \
         given; never invent an id.\n\
         3. Stay close to the wording of the sources; add nothing they do not say.\n\
         4. If the sources say nothing for a section, write one line in italics saying so, \
         without a citation.\n\
         5. Under \"{}\" write numbered steps; under \"{CHECKLIST}\" write \"- [ ] \" items.\n\
         6. Do not write a title or a \"{REFERENCES}\" section: they are added for you.\n\
         Answer with the Markdown only.",
        headings.join("\n"),
        crate::outline::PROCEDURE,
    )
}

/// The user prompt: the procedure, its sources, and for a revision the draft and its issues.
pub fn user_prompt(brief: &Brief<'_>, task: Task<'_>) -> String {
    let mut p = format!("Procedure: {}\n", brief.title.trim());
    if !brief.context.trim().is_empty() {
        p.push_str(&format!("Context: {}\n", brief.context.trim()));
    }
    p.push_str("\nSources:\n");
    for s in brief.sources {
        let text: String = s.text.chars().take(SOURCE_CHARS).collect();
        p.push_str(&format!(
            "<source id=\"{}\" tier=\"{}\" year=\"{}\">\nTitle: {}\n{}\n</source>\n",
            s.id,
            s.tier,
            s.year.map(|y| y.to_string()).unwrap_or_default(),
            s.title,
            text.trim()
        ));
    }
    match task {
        Task::Draft => p.push_str("\nWrite the procedure.\n"),
        Task::Revise { previous, issues } => {
            p.push_str("\nA reviewer found these issues in the draft below:\n");
            for i in issues {
                p.push_str(&format!("- {i}\n"));
            }
            p.push_str(&format!(
                "\nRevise the draft to fix them, following the rules.\n<draft>\n{}\n</draft>\n",
                body_of(previous)
            ));
        }
    }
    p
}

/// The sections of a procedure: without the title, notices and references we add.
fn body_of(markdown: &str) -> String {
    let mut out = Vec::new();
    let mut started = false;
    for line in markdown.lines() {
        let t = line.trim_start();
        if let Some(heading) = t.strip_prefix("## ") {
            if heading.trim() == REFERENCES {
                break;
            }
            started = true;
        }
        if started {
            out.push(line);
        }
    }
    out.join("\n").trim().to_string()
}

/// The procedure around the model's sections: our title and notices, its sections, our
/// references (for the retrieved sources it cited).
pub fn assemble(brief: &Brief<'_>, writer_name: &str, text: &str) -> String {
    let body = body_of(text);
    let mut md = writer::header(
        brief.title,
        &format!(
            "Skrevet af sprogmodellen {writer_name} ud fra afdelingens evidensbibliotek; hver \
             sætning angiver sin kilde som [S:SRC….]."
        ),
        brief.sources,
        brief.ack,
    );
    md.push('\n');
    md.push_str(&body);
    md.push_str("\n\n");
    let cited: Vec<&str> = brief
        .sources
        .iter()
        .map(|s| s.id.as_str())
        .filter(|id| body.contains(&format!("[S:{id}]")))
        .collect();
    md.push_str(&writer::references(brief.sources, &cited));
    md
}

impl Writer for LlmWriter {
    fn name(&self) -> String {
        format!("{}:{}", self.llm.provider_name(), self.llm.model())
    }

    fn plan(&self, brief: Brief<'_>, task: Task<'_>, _: u32, budget: i64) -> Result<u32, i64> {
        let input = crate::llm::estimate_input_tokens(&system_prompt(), &user_prompt(&brief, task));
        crate::llm::plan(
            self.llm.price,
            input,
            Some(budget),
            self.llm.max_tokens,
            self.llm.min_output_tokens,
        )
    }

    fn write<'a>(
        &'a self,
        ctx: &'a JobContext,
        brief: Brief<'a>,
        task: Task<'a>,
        iteration: u32,
        budget: Option<i64>,
    ) -> LocalBoxFuture<'a, Result<Spent<Drafted>, LlmError>> {
        Box::pin(async move {
            let stage = match task {
                Task::Draft => Stage::Draft,
                Task::Revise { .. } => Stage::Revision,
            };
            let system = system_prompt();
            let user = user_prompt(&brief, task);
            let step = Step {
                stage,
                iteration,
                attempt: brief.attempt,
            };
            let spent = self.llm.call(ctx, step, &system, &user, budget).await?;
            let value = match spent.value {
                CallResult::Done {
                    completion,
                    reused,
                    max_tokens,
                } => Drafted::Text {
                    markdown: assemble(&brief, &self.name(), &completion.text),
                    reused,
                    max_tokens,
                    truncated: completion.truncated,
                },
                CallResult::CapReached { worst_case_pusd } => {
                    Drafted::CapReached { worst_case_pusd }
                }
                CallResult::Cancelled => Drafted::Cancelled,
            };
            Ok(Spent {
                value,
                cost_pusd: spent.cost_pusd,
                attempts: spent.attempts,
            })
        })
    }
}
