//! The language-model writer: prompts a model (through [`Llm::call`]) for the sections of the
//! procedure, within the budget the quality loop gives it.
//!
//! Whatever the model returns, the title, the notices (demonstration material, acknowledged
//! gaps) and the reference list are ours: the model writes the sections, and may cite only the
//! ids of the retrieved sources it was shown (the evaluator penalises any other id, and the
//! next revision is told which).

use crate::evidence::{self, EvidencePassage, EvidenceSource};
use crate::llm::{CallResult, Llm, LlmError, Spent, Step};
use crate::outline::{evidence_sections, CHECKLIST, REFERENCES};
use crate::ports::RunPorts;
use crate::writer::{Brief, Composed, Drafted, Task, Writer};
use futures_util::future::LocalBoxFuture;

/// What the model is shown by default: this many bytes of retrieved passages (counted as
/// tokens the way the cost cap counts them: at most one token per byte).
pub const DEFAULT_EVIDENCE_TOKENS: usize = 16_000;

/// Writes with a language model.
pub struct LlmWriter {
    pub llm: Llm,
    /// The evidence the prompt carries at most (`llm_evidence_tokens`, counted as bytes).
    pub evidence_tokens: usize,
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

/// The passages the prompt carries within `budget` bytes: taken in turns, the best source's
/// first passage, the next source's first, …, then each source's second, so every retrieved
/// source is heard before any says more. Returned by source, in document order.
pub fn passages_within<'a>(
    brief: &Brief<'a>,
    budget: usize,
) -> Vec<(&'a EvidenceSource, Vec<&'a EvidencePassage>)> {
    let mut chosen: Vec<Vec<&EvidencePassage>> = vec![Vec::new(); brief.sources.len()];
    let mut used = 0usize;
    let deepest = brief
        .sources
        .iter()
        .map(|s| s.passages.len())
        .max()
        .unwrap_or(0);
    'turns: for turn in 0..deepest {
        for (i, s) in brief.sources.iter().enumerate() {
            let Some(p) = s.passages.get(turn) else {
                continue;
            };
            if used + p.text.len() > budget {
                if used == 0 {
                    continue;
                }
                break 'turns;
            }
            used += p.text.len();
            chosen[i].push(p);
        }
    }
    brief
        .sources
        .iter()
        .zip(chosen)
        .filter(|(_, ps)| !ps.is_empty())
        .collect()
}

/// The user prompt: the procedure, its retrieved passages within `evidence_budget` bytes
/// (each with its source id, pages and heading), and for a revision the draft and its issues.
pub fn user_prompt(brief: &Brief<'_>, task: Task<'_>, evidence_budget: usize) -> String {
    let mut p = format!("Procedure: {}\n", brief.title.trim());
    if !brief.context.trim().is_empty() {
        p.push_str(&format!("Context: {}\n", brief.context.trim()));
    }
    p.push_str("\nSources:\n");
    for (s, passages) in passages_within(brief, evidence_budget) {
        p.push_str(&format!(
            "<source id=\"{}\" tier=\"{}\" year=\"{}\">\nTitle: {}\n",
            s.id,
            s.tier,
            s.year.map(|y| y.to_string()).unwrap_or_default(),
            s.title,
        ));
        for ps in passages {
            p.push_str(&format!(
                "<passage pages=\"{}\" section=\"{}\">\n{}\n</passage>\n",
                ps.pages_label().unwrap_or_default(),
                ps.heading,
                ps.text.trim()
            ));
        }
        p.push_str("</source>\n");
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
    // An answer without a single `## ` section is kept as it is, not dropped: the procedure
    // then shows what the model wrote, and the loop's `missing_outline` finding blocks it.
    let body = match body_of(text) {
        b if b.is_empty() => text.trim().to_string(),
        b => b,
    };
    let mut md = evidence::header(
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
    md.push_str(&evidence::references_with_pages(
        brief.sources,
        &cited,
        &body,
    ));
    md
}

impl Writer for LlmWriter {
    fn name(&self) -> String {
        format!("{}:{}", self.llm.provider_name(), self.llm.model())
    }

    fn compose(&self, brief: &Brief<'_>, task: Task<'_>, iteration: u32) -> Composed {
        Composed {
            stage: task.stage(),
            iteration,
            system: system_prompt(),
            user: user_prompt(brief, task, self.evidence_tokens),
        }
    }

    fn plan(&self, step: &Composed, budget: i64) -> Result<u32, i64> {
        let input = crate::llm::estimate_input_tokens(&step.system, &step.user);
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
        ports: RunPorts<'a>,
        brief: Brief<'a>,
        step: &'a Composed,
        budget: Option<i64>,
    ) -> LocalBoxFuture<'a, Result<Spent<Drafted>, LlmError>> {
        Box::pin(async move {
            let call = Step {
                stage: step.stage,
                iteration: step.iteration,
                attempt: brief.attempt,
            };
            let spent = self
                .llm
                .call(ports, call, &step.system, &step.user, budget)
                .await?;
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
