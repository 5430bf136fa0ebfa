//! OpenAI-compatible Chat Completions (`POST {base_url}/chat/completions`): OpenAI itself, and
//! the servers that speak its API (Ollama, vLLM, llama.cpp) at their own `base_url`.
//!
//! `max_tokens` is sent rather than the newer `max_completion_tokens` because every compatible
//! server understands it.

use super::{exchange, ApiKey, CallError, ChatRequest, Completion, Provider};
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

/// A Chat Completions endpoint and the model to ask.
pub struct OpenAi {
    client: reqwest::Client,
    /// Up to and including the API version, e.g. `https://api.openai.com/v1`.
    base_url: String,
    model: String,
}

impl OpenAi {
    pub fn new(client: reqwest::Client, base_url: &str, model: &str) -> Self {
        OpenAi {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
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

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
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
            });
            let mut r = self
                .client
                .post(format!("{}/chat/completions", self.base_url))
                .json(&body);
            if let Some(k) = key {
                r = r.bearer_auth(k.expose());
            }
            let parsed: Response = exchange("openai", r).await?;
            let usage = parsed.usage.ok_or_else(|| {
                CallError::terminal("openai: the response reports no token usage".into())
            })?;
            let choice =
                parsed.choices.into_iter().next().ok_or_else(|| {
                    CallError::terminal("openai: the response has no choices".into())
                })?;
            Ok(Completion {
                text: choice.message.content.unwrap_or_default(),
                tokens_in: usage.prompt_tokens,
                tokens_out: usage.completion_tokens,
                truncated: choice.finish_reason.as_deref() == Some("length"),
            })
        })
    }
}
