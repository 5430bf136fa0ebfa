//! The Anthropic Messages API (`POST {base_url}/v1/messages`), streamed: `message_start`
//! carries the input usage, `content_block_delta` the text, `message_delta` the stop reason
//! and the output usage. A server that answers with one JSON body is read as well.

use super::{
    exchange, stream_error, Answer, ApiKey, CallError, ChatRequest, Completion, Cut, Fed, Provider,
    Target, Timeouts,
};
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

/// The API version this client speaks (the `anthropic-version` header).
const API_VERSION: &str = "2023-06-01";

/// A Messages endpoint and the model to ask.
pub struct Anthropic {
    client: reqwest::Client,
    /// Without the `/v1` path, e.g. `https://api.anthropic.com`.
    base_url: String,
    model: String,
    timeouts: Timeouts,
}

impl Anthropic {
    pub fn new(client: reqwest::Client, base_url: &str, model: &str, timeouts: Timeouts) -> Self {
        Anthropic {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            timeouts,
        }
    }
}

#[derive(Deserialize)]
struct Response {
    content: Vec<Block>,
    stop_reason: Option<String>,
    usage: Usage,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
}

/// The Messages API's usage. `input_tokens` counts only the prompt tokens that were neither
/// read from nor written to the prompt cache: the input is the sum of all three (a provider
/// bills each, cache reads at a lower rate, which the price table does not model, so they are
/// priced as input: never less than the bill).
#[derive(Deserialize, Default, Clone, Copy)]
pub(crate) struct Usage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl Usage {
    /// Every input token the request was billed for.
    pub(crate) fn input(&self) -> u64 {
        self.input_tokens
            + self.cache_read_input_tokens.unwrap_or(0)
            + self.cache_creation_input_tokens.unwrap_or(0)
    }
}

/// One event of a streamed answer (the fields this client reads).
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    message: Option<StartMessage>,
    delta: Option<EventDelta>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct StartMessage {
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct EventDelta {
    text: Option<String>,
    stop_reason: Option<String>,
}

/// A streamed answer as it arrives.
#[derive(Default)]
struct Streamed {
    text: String,
    chunks: u64,
    /// From `message_start` (input, cache) and `message_delta` (output, cumulative; newer
    /// servers repeat the input counts there).
    input: Option<u64>,
    output: Option<u64>,
    stop_reason: Option<String>,
    stopped: bool,
}

impl Streamed {
    fn take_usage(&mut self, u: &Usage) {
        if u.input() > 0 || self.input.is_none() {
            self.input = Some(u.input().max(self.input.unwrap_or(0)));
        }
        self.output = Some(u.output_tokens.max(self.output.unwrap_or(0)));
    }
}

impl Answer for Streamed {
    fn feed(&mut self, provider: &str, event: &sse_stream::Sse) -> Result<Fed, CallError> {
        let Some(data) = event.data.as_deref() else {
            return Ok(Fed::Nothing);
        };
        let value: serde_json::Value = serde_json::from_str(data).map_err(|e| {
            CallError::terminal(format!("{provider}: unreadable event in the answer: {e}"))
        })?;
        if value.get("type").and_then(|t| t.as_str()) == Some("error")
            || event.event.as_deref() == Some("error")
        {
            return Err(CallError {
                cut: Some(self.so_far()),
                ..stream_error(provider, &value)
            });
        }
        let e: Event = serde_json::from_value(value).map_err(|e| {
            CallError::terminal(format!("{provider}: unexpected event in the answer: {e}"))
        })?;
        match e.kind.as_str() {
            "message_start" => {
                if let Some(u) = e.message.and_then(|m| m.usage) {
                    self.take_usage(&u);
                }
            }
            "content_block_delta" => {
                if let Some(t) = e.delta.and_then(|d| d.text).filter(|t| !t.is_empty()) {
                    self.text.push_str(&t);
                    self.chunks += 1;
                    return Ok(Fed::Text);
                }
            }
            "message_delta" => {
                if let Some(u) = &e.usage {
                    self.take_usage(u);
                }
                if let Some(r) = e.delta.and_then(|d| d.stop_reason) {
                    self.stop_reason = Some(r);
                }
            }
            "message_stop" => {
                self.stopped = true;
                return Ok(Fed::Done);
            }
            _ => {}
        }
        Ok(Fed::Nothing)
    }

    fn so_far(&self) -> Cut {
        Cut {
            tokens_in: self.input,
            tokens_out: self.chunks.max(self.output.unwrap_or(0)),
        }
    }

    fn finish(self, provider: &str) -> Result<Completion, CallError> {
        if !self.stopped && self.stop_reason.is_none() {
            return Err(CallError {
                cut: Some(self.so_far()),
                ..CallError::transient(format!(
                    "{provider}: the answer ended without message_stop after {} chunk(s): the \
                     stream was cut",
                    self.chunks
                ))
            });
        }
        let (Some(input), Some(output)) = (self.input, self.output) else {
            return Err(CallError::terminal(format!(
                "{provider}: the streamed answer reports no token usage"
            )));
        };
        Ok(Completion {
            text: self.text,
            tokens_in: input,
            tokens_out: output,
            truncated: self.stop_reason.as_deref() == Some("max_tokens"),
        })
    }

    fn whole(provider: &str, body: &[u8]) -> Result<Completion, CallError> {
        let parsed: Response = serde_json::from_slice(body).map_err(|e| {
            CallError::terminal(format!("{provider}: unexpected response body: {e}"))
        })?;
        let text = parsed
            .content
            .iter()
            .filter(|b| b.kind == "text")
            .map(|b| b.text.as_str())
            .collect::<Vec<_>>()
            .join("");
        Ok(Completion {
            text,
            tokens_in: parsed.usage.input(),
            tokens_out: parsed.usage.output_tokens,
            truncated: parsed.stop_reason.as_deref() == Some("max_tokens"),
        })
    }
}

impl Provider for Anthropic {
    fn name(&self) -> &'static str {
        "anthropic"
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
                "max_tokens": req.max_tokens,
                "system": req.system,
                "messages": [{ "role": "user", "content": req.user }],
                "temperature": 0,
                "stream": true,
            });
            let mut r = self
                .client
                .post(format!("{}/v1/messages", self.base_url))
                .header("anthropic-version", API_VERSION)
                .json(&body);
            if let Some(k) = key {
                r = r.header("x-api-key", k.expose());
            }
            let target = Target {
                provider: "anthropic",
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

    fn event(name: &str, data: serde_json::Value) -> sse_stream::Sse {
        sse_stream::Sse::default()
            .event(name)
            .data(data.to_string())
    }

    /// A cached prompt: `input_tokens` alone is what was neither read from nor written to the
    /// cache; the call's input is all three (a real run recorded 325 instead of 1,492).
    #[test]
    fn input_tokens_include_cache_reads_and_writes_streamed_or_not() {
        let mut a = Streamed::default();
        let usage = json!({ "input_tokens": 325, "cache_read_input_tokens": 1100,
                            "cache_creation_input_tokens": 67, "output_tokens": 1 });
        let events = [
            event(
                "message_start",
                json!({ "type": "message_start", "message": { "usage": usage } }),
            ),
            event("ping", json!({ "type": "ping" })),
            event(
                "content_block_delta",
                json!({ "type": "content_block_delta", "delta": { "type": "text_delta", "text": "## Indikationer" } }),
            ),
            event(
                "message_delta",
                json!({ "type": "message_delta", "delta": { "stop_reason": "max_tokens" }, "usage": { "output_tokens": 42 } }),
            ),
            event("message_stop", json!({ "type": "message_stop" })),
        ];
        let fed: Vec<Fed> = events
            .iter()
            .map(|e| a.feed("anthropic", e).unwrap())
            .collect();
        assert_eq!(
            fed,
            [
                Fed::Nothing,
                Fed::Nothing,
                Fed::Text,
                Fed::Nothing,
                Fed::Done
            ]
        );
        let c = a.finish("anthropic").unwrap();
        assert_eq!((c.tokens_in, c.tokens_out), (1492, 42));
        assert!(c.truncated);
        assert_eq!(c.text, "## Indikationer");

        let whole = json!({ "content": [{ "type": "text", "text": "x" }], "stop_reason": "end_turn",
                            "usage": usage });
        let c = Streamed::whole("anthropic", whole.to_string().as_bytes()).unwrap();
        assert_eq!((c.tokens_in, c.tokens_out), (1492, 1));
    }

    /// A stream that ends without `message_stop` was cut: retryable, with what it had said.
    #[test]
    fn a_stream_cut_before_message_stop_is_not_an_answer() {
        let mut a = Streamed::default();
        a.feed(
            "anthropic",
            &event(
                "message_start",
                json!({ "type": "message_start", "message": { "usage": { "input_tokens": 10, "output_tokens": 1 } } }),
            ),
        )
        .unwrap();
        let e = a.finish("anthropic").unwrap_err();
        assert!(e.retryable && e.cut.is_some(), "{e:?}");
        assert_eq!(e.cut.unwrap().tokens_in, Some(10));
        // An overloaded server's error event is retried; a refusal is not.
        let mut a = Streamed::default();
        let e = a
            .feed(
                "anthropic",
                &event(
                    "error",
                    json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } }),
                ),
            )
            .unwrap_err();
        assert!(e.retryable, "{e:?}");
        assert!(e.message.contains("Overloaded"));
    }
}
