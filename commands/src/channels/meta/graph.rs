//! The Meta Graph API client every Meta channel uses (WhatsApp Cloud API, Messenger, Instagram):
//! one pooled HTTP client, URL building, and the reading of answers into JSON or a
//! [`GraphError`]. Each channel adds its own calls as `impl GraphClient` blocks in its folder
//! (`channels::whatsapp::client`, [`super::login`], `channels::messenger::page`,
//! `channels::instagram::login`).
//!
//! The base URL is configurable so tests can point the client at a local fake:
//! [`GraphClient::from_env`] reads `META_GRAPH_BASE_URL` and falls back to
//! [`DEFAULT_GRAPH_BASE_URL`].
//!
//! Tokens, app secrets and URLs with query strings never appear in errors or logs.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Url};
use serde_json::Value;

use super::errors::{api_error, retry_after_seconds, GraphError};

/// Graph API base URL used when `META_GRAPH_BASE_URL` is not set.
pub const DEFAULT_GRAPH_BASE_URL: &str = "https://graph.facebook.com/v21.0";

/// Environment variable that overrides the Graph API base URL.
pub const GRAPH_BASE_URL_ENV: &str = "META_GRAPH_BASE_URL";

/// Timeout for a whole Graph API request (connect, send, read the body).
pub const GRAPH_TIMEOUT: Duration = Duration::from_secs(15);

/// The base URL from `META_GRAPH_BASE_URL`, else [`DEFAULT_GRAPH_BASE_URL`].
pub fn graph_base_url_from_env() -> String {
    std::env::var(GRAPH_BASE_URL_ENV)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| DEFAULT_GRAPH_BASE_URL.to_owned())
}

/// Meta Graph API client over one pooled HTTP client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GraphClient {
    /// 15 s timeout, no redirects; what it builds is sent with [`Self::execute`].
    pub(crate) http: reqwest::Client,
    base_url: String,
}

impl GraphClient {
    /// A client for `base_url` (e.g. `https://graph.facebook.com/v21.0`; a trailing `/` is
    /// ignored), with a 15 s timeout and redirects disabled.
    pub fn new(base_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(GRAPH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the Graph API HTTP client configuration is valid");
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        GraphClient { http, base_url }
    }

    /// A client for [`graph_base_url_from_env`].
    pub fn from_env() -> Self {
        Self::new(graph_base_url_from_env())
    }

    /// The base URL requests go to (no trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// POST `{base}/{page_id}/messages` (Messenger and Instagram Send API) with the Page access
    /// token; returns the new message's `message_id`.
    pub async fn send_page_message(
        &self,
        token: &str,
        page_id: &str,
        body: &Value,
    ) -> Result<String, GraphError> {
        self.post_message(token, page_id, body, "/message_id").await
    }

    /// POST `{base}/{sender_id}/messages`; the new message's id is at `id_pointer` of the answer.
    pub(crate) async fn post_message(
        &self,
        token: &str,
        sender_id: &str,
        body: &Value,
        id_pointer: &str,
    ) -> Result<String, GraphError> {
        let url = self.url(&[sender_id, "messages"], &[])?;
        let response = self
            .call(Method::POST, url, Some(token), Some(body))
            .await?;
        response
            .pointer(id_pointer)
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| GraphError::Transport(format!("send response without {id_pointer}")))
    }

    /// GET `{base}/{segments…}?{query}` without a token (the OAuth token endpoints take their
    /// credentials in the query); the JSON answer.
    pub(crate) async fn token_exchange(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Value, GraphError> {
        let url = self.url(segments, query)?;
        self.call(Method::GET, url, None, None).await
    }

    /// `{base}/{segments…}?{query}`, each segment percent-encoded as one path segment.
    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, GraphError> {
        if segments.iter().any(|segment| segment.is_empty()) {
            return Err(GraphError::Transport("empty Graph API path segment".into()));
        }
        let mut url = Url::parse(&self.base_url)
            .map_err(|e| GraphError::Transport(format!("invalid Graph API base URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| GraphError::Transport("Graph API base URL cannot have a path".into()))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends one request and returns the JSON body of a 2xx answer (`null` for an empty body).
    pub(crate) async fn call(
        &self,
        method: Method,
        url: Url,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, GraphError> {
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.execute(request).await
    }

    /// Sends a request built on `self.http`; the JSON body of a 2xx answer.
    pub(crate) async fn execute(&self, request: RequestBuilder) -> Result<Value, GraphError> {
        let request = request.build()?;
        let (method, path) = (request.method().clone(), request.url().path().to_owned());
        let response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(error) => {
                let error = GraphError::from(error);
                tracing::debug!(%method, %path, %error, "graph request failed");
                return Err(error);
            }
        };
        let status = response.status();
        let retry_after = retry_after_seconds(response.headers());
        let bytes = response.bytes().await?;
        tracing::debug!(%method, %path, status = status.as_u16(), "graph response");
        if status.is_success() {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .map_err(|e| GraphError::Transport(format!("unreadable Graph API response: {e}")));
        }
        Err(api_error(status.as_u16(), &bytes, retry_after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_defaults_and_trims() {
        assert_eq!(GraphClient::new("http://x/v1/").base_url(), "http://x/v1");
        let url = GraphClient::new("http://x/v21.0")
            .url(&["1/2", "messages"], &[])
            .unwrap();
        assert_eq!(url.as_str(), "http://x/v21.0/1%2F2/messages");
        assert!(GraphClient::new("http://x")
            .url(&["", "messages"], &[])
            .is_err());
    }
}
