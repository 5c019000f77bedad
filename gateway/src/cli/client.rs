//! The HTTP client the commands share: the gateway's URL, the token, and EPR's envelope.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use super::CliError;
use crate::error_chain::error_chain;

/// Where the gateway is and how to authenticate (flattened into every client command).
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// Base URL of the gateway.
    #[arg(long, env = "EPR_URL", default_value = "http://localhost:8042")]
    pub url: String,

    /// Bearer token (the admin token for receivers, groups and plugins; the ingest or admin
    /// token for events). Prefer the environment variable: flags show up in `ps`.
    #[arg(long, env = "EPR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// A client of one gateway.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client for `connection`.
    pub fn new(connection: &Connection) -> Result<Self, CliError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| CliError::Usage(format!("cannot build an HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: connection.url.trim_end_matches('/').to_owned(),
            token: connection.token.clone().filter(|t| !t.is_empty()),
        })
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `path` with `pairs` as its query string, encoded.
    pub fn with_query(&self, path: &str, pairs: &[(&str, String)]) -> Result<String, CliError> {
        let mut url = reqwest::Url::parse(&self.url(path))
            .map_err(|e| CliError::Usage(format!("invalid --url {}: {e}", self.base)))?;
        if !pairs.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(match url.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        })
    }

    /// A request to `path`, with the token if there is one.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `body` (JSON) to `path`; the answer's JSON, or the gateway's error message.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    /// Sends `request`; the answer's JSON, or an error carrying the gateway's message.
    pub async fn send(&self, request: RequestBuilder) -> Result<Value, CliError> {
        let response = self.open(request).await?;
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Sends `request`; the response if its status is a success, else an error carrying the
    /// gateway's message.
    pub async fn open(&self, request: RequestBuilder) -> Result<reqwest::Response, CliError> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Err(api_error(status, &answer))
    }

    /// The error for a gateway that could not be talked to.
    pub fn unreachable(&self, e: reqwest::Error) -> CliError {
        CliError::Unreachable {
            url: self.base.clone(),
            reason: error_chain(&e),
        }
    }

    /// A `curl` command doing what `request` would (for `--dry-run`).
    pub fn curl(&self, method: &Method, path: &str, body: Option<&Value>) -> String {
        let mut command = format!("curl -X {method} '{}'", self.url(path));
        if self.token.is_some() {
            command.push_str(" -H \"authorization: Bearer $EPR_TOKEN\"");
        }
        if let Some(body) = body {
            let text = body.to_string().replace('\'', r"'\''");
            command.push_str(&format!(
                " -H \"content-type: application/json\" -d '{text}'"
            ));
        }
        command
    }
}

/// The error for an answer with a failure status: the envelope's messages, or the body.
fn api_error(status: StatusCode, answer: &Value) -> CliError {
    let message = match answer.get("errors").and_then(Value::as_array) {
        Some(errors) => errors
            .iter()
            .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("\n"),
        None => match answer {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        },
    };
    CliError::Api {
        status: status.as_u16(),
        message,
    }
}
