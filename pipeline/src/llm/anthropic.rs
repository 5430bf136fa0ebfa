//! The Anthropic Messages API (`POST {base_url}/v1/messages`).

use super::{exchange, ApiKey, CallError, ChatRequest, Completion, Provider};
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
}

impl Anthropic {
    pub fn new(client: reqwest::Client, base_url: &str, model: &str) -> Self {
        Anthropic {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
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

#[derive(Deserialize)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
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
            });
            let mut r = self
                .client
                .post(format!("{}/v1/messages", self.base_url))
                .header("anthropic-version", API_VERSION)
                .json(&body);
            if let Some(k) = key {
                r = r.header("x-api-key", k.expose());
            }
            let parsed: Response = exchange("anthropic", r).await?;
            let text = parsed
                .content
                .iter()
                .filter(|b| b.kind == "text")
                .map(|b| b.text.as_str())
                .collect::<Vec<_>>()
                .join("");
            Ok(Completion {
                text,
                tokens_in: parsed.usage.input_tokens,
                tokens_out: parsed.usage.output_tokens,
                truncated: parsed.stop_reason.as_deref() == Some("max_tokens"),
            })
        })
    }
}
