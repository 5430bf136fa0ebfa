//! OpenAI-compatible Chat Completions (`POST {base_url}/chat/completions`): OpenAI itself, and
//! the servers that speak its API (Ollama, vLLM, llama.cpp) at their own `base_url`.
//!
//! The answer is streamed (`stream: true`, with `stream_options.include_usage` so the last
//! chunk carries the usage); a server that ignores `stream` and answers with one JSON body is
//! read as well. `max_tokens` is sent rather than the newer `max_completion_tokens` because
//! every compatible server understands it.

use super::{
    exchange, stream_error, Answer, ApiKey, CallError, ChatRequest, Completion, Cut, Fed, Provider,
    Target, Timeouts,
};
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

/// A Chat Completions endpoint and the model to ask.
pub struct OpenAi {
    client: reqwest::Client,
    /// Up to and including the API version, e.g. `https://api.openai.com/v1`.
    base_url: String,
    model: String,
    timeouts: Timeouts,
}

impl OpenAi {
    pub fn new(client: reqwest::Client, base_url: &str, model: &str, timeouts: Timeouts) -> Self {
        OpenAi {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            timeouts,
        }
    }
}

#[derive(Deserialize)]
struct Response {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
}

/// One chunk of a streamed answer.
#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    content: Option<String>,
}

/// A streamed answer as it arrives.
#[derive(Default)]
struct Streamed {
    text: String,
    chunks: u64,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl Answer for Streamed {
    fn feed(&mut self, provider: &str, event: &sse_stream::Sse) -> Result<Fed, CallError> {
        let Some(data) = event.data.as_deref() else {
            return Ok(Fed::Nothing);
        };
        if data.trim() == "[DONE]" {
            return Ok(Fed::Done);
        }
        let value: serde_json::Value = serde_json::from_str(data).map_err(|e| {
            CallError::terminal(format!("{provider}: unreadable chunk in the answer: {e}"))
        })?;
        if value.get("error").is_some() || event.event.as_deref() == Some("error") {
            return Err(stream_error(provider, &value));
        }
        let chunk: Chunk = serde_json::from_value(value).map_err(|e| {
            CallError::terminal(format!("{provider}: unexpected chunk in the answer: {e}"))
        })?;
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        let mut fed = Fed::Nothing;
        for c in chunk.choices {
            if let Some(t) = c.delta.content.filter(|t| !t.is_empty()) {
                self.text.push_str(&t);
                self.chunks += 1;
                fed = Fed::Text;
            }
            if c.finish_reason.is_some() {
                self.finish_reason = c.finish_reason;
            }
        }
        Ok(fed)
    }

    fn so_far(&self) -> Cut {
        Cut {
            tokens_in: self.usage.map(|u| u.prompt_tokens),
            tokens_out: self.chunks,
        }
    }

    fn finish(self, provider: &str) -> Result<Completion, CallError> {
        let Some(reason) = self.finish_reason else {
            return Err(CallError {
                cut: Some(self.so_far()),
                ..CallError::transient(format!(
                    "{provider}: the answer ended without a finish_reason after {} chunk(s): the \
                     stream was cut",
                    self.chunks
                ))
            });
        };
        let usage = self.usage.ok_or_else(|| {
            CallError::terminal(format!(
                "{provider}: the streamed answer reports no token usage (the server ignores \
                 stream_options.include_usage)"
            ))
        })?;
        Ok(Completion {
            text: self.text,
            tokens_in: usage.prompt_tokens,
            tokens_out: usage.completion_tokens,
            truncated: reason == "length",
        })
    }

    fn whole(provider: &str, body: &[u8]) -> Result<Completion, CallError> {
        let parsed: Response = serde_json::from_slice(body).map_err(|e| {
            CallError::terminal(format!("{provider}: unexpected response body: {e}"))
        })?;
        let usage = parsed.usage.ok_or_else(|| {
            CallError::terminal(format!("{provider}: the response reports no token usage"))
        })?;
        let choice = parsed.choices.into_iter().next().ok_or_else(|| {
            CallError::terminal(format!("{provider}: the response has no choices"))
        })?;
        Ok(Completion {
            text: choice.message.content.unwrap_or_default(),
            tokens_in: usage.prompt_tokens,
            tokens_out: usage.completion_tokens,
            truncated: choice.finish_reason.as_deref() == Some("length"),
        })
    }
}

impl Provider for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn send<'a>(
        &'a self,
        req: &'a ChatRequest,
        key: Option<&'a ApiKey>,
    ) -> BoxFuture<'a, Result<Completion, CallError>> {
        Box::pin(async move {
            let body = json!({
                "model": self.model,
                "messages": [
                    { "role": "system", "content": req.system },
                    { "role": "user", "content": req.user },
                ],
                "max_tokens": req.max_tokens,
                "temperature": 0,
                "stream": true,
                "stream_options": { "include_usage": true },
            });
            let mut r = self
                .client
                .post(format!("{}/chat/completions", self.base_url))
                .json(&body);
            if let Some(k) = key {
                r = r.bearer_auth(k.expose());
            }
            let target = Target {
                provider: "openai",
                base_url: &self.base_url,
                timeouts: self.timeouts,
            };
            exchange::<Streamed>(target, r).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(v: serde_json::Value) -> sse_stream::Sse {
        sse_stream::Sse::default().data(v.to_string())
    }

    /// The text from the deltas, the finish reason, and the usage from the last chunk.
    #[test]
    fn a_streamed_answer_takes_its_usage_from_the_last_chunk() {
        let mut a = Streamed::default();
        let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
            data(json!({ "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] }))
        };
        let events = [
            chunk(json!({ "role": "assistant", "content": "" }), json!(null)),
            chunk(json!({ "content": "## Indi" }), json!(null)),
            chunk(json!({ "content": "kationer" }), json!(null)),
            chunk(json!({}), json!("length")),
            data(
                json!({ "choices": [], "usage": { "prompt_tokens": 1234, "completion_tokens": 56 } }),
            ),
            sse_stream::Sse::default().data("[DONE]"),
        ];
        let fed: Vec<Fed> = events
            .iter()
            .map(|e| a.feed("openai", e).unwrap())
            .collect();
        assert_eq!(
            fed,
            [
                Fed::Nothing,
                Fed::Text,
                Fed::Text,
                Fed::Nothing,
                Fed::Nothing,
                Fed::Done
            ]
        );
        let c = a.finish("openai").unwrap();
        assert_eq!(c.text, "## Indikationer");
        assert_eq!((c.tokens_in, c.tokens_out), (1234, 56));
        assert!(c.truncated);
    }

    #[test]
    fn a_stream_without_a_finish_reason_was_cut() {
        let mut a = Streamed::default();
        a.feed(
            "openai",
            &data(json!({ "choices": [{ "delta": { "content": "x" }, "finish_reason": null }] })),
        )
        .unwrap();
        let e = a.finish("openai").unwrap_err();
        assert!(e.retryable, "{e:?}");
        assert_eq!(e.cut.unwrap().tokens_out, 1);
    }
}
