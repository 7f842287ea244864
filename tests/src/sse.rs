//! A small server-sent-events client for the realtime stream.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

/// One received event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Value,
}

/// An open `GET /api/stream` connection.
pub struct SseClient {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseClient {
    /// Connects with a bearer token, resuming after `last_event_id` when given.
    pub async fn connect(base_url: &str, token: &str, last_event_id: Option<&str>) -> SseClient {
        let mut request = reqwest::Client::new()
            .get(format!("{base_url}/api/stream"))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("stream connects");
        assert_eq!(response.status(), 200, "stream status");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        SseClient {
            stream: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped), or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: None,
                    event: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                event.data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        }
    }

    /// Events until one of type `event_type` arrives (all of them, that one last).
    pub async fn until(&mut self, event_type: &str, timeout: Duration) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while let Some(event) = self.next(deadline - tokio::time::Instant::now()).await {
            let done = event.event.as_deref() == Some(event_type);
            seen.push(event);
            if done {
                return seen;
            }
        }
        panic!(
            "no {event_type} event within {timeout:?}; saw {:?}",
            seen.iter().map(|e| e.event.clone()).collect::<Vec<_>>()
        );
    }
}
