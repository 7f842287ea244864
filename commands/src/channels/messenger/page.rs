//! The Messenger Platform's Page setup through the Graph API: the Pages a user manages, Page
//! access tokens, the Page's webhook subscription and its Messenger profile (persistent menu).
//! The user token it starts from comes from Facebook Login (`channels::meta::login`).
//!
//! Like the rest of [`GraphClient`], nothing here puts a token into an error or a log line: they
//! travel in the query or the `Authorization` header only.

use reqwest::Method;
use serde_json::{json, Value};

use crate::channels::meta::login::{confirmed, optional_text, required_text};
use crate::channels::meta::{GraphClient, GraphError};

/// The Page webhook fields the Messenger channel needs.
pub const PAGE_SUBSCRIBED_FIELDS: &str =
    "messages,messaging_postbacks,message_deliveries,message_reads,message_echoes,message_reactions";

/// Pages asked for per `GET /me/accounts` request.
const PAGES_PER_REQUEST: &str = "100";

/// At most this many `GET /me/accounts` requests are made for one listing (so 1,000 Pages).
const MAX_PAGE_LIST_REQUESTS: usize = 10;

/// A Facebook Page a user manages, as `GET /me/accounts` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPage {
    /// The Page id (the Messenger webhooks' `entry[].id`).
    pub id: String,
    /// The Page's name.
    pub name: String,
}

/// What `GET /{page_id}?fields=access_token,name` answers for a Page the user manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageAccess {
    /// The Page access token (long-lived when asked with a long-lived user token).
    pub access_token: String,
    /// The Page's current name, when Meta sent it.
    pub name: Option<String>,
}

/// What `GET /{page_id}?fields=id,name` answers with a Page access token: the Page the token
/// reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageProfile {
    /// The Page's id, as Meta answers it.
    pub id: String,
    /// The Page's name, when Meta sent it.
    pub name: Option<String>,
}

impl GraphClient {
    /// GET `{base}/me/accounts?fields=id,name&limit=100` with the user token: the Pages the user
    /// manages. Further result pages are read through `paging.cursors.after` (only while Meta
    /// sends `paging.next`) on this client's own base URL, never by following the URL Meta
    /// returns, for at most 10 requests.
    pub async fn managed_pages(&self, user_token: &str) -> Result<Vec<ManagedPage>, GraphError> {
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGE_LIST_REQUESTS {
            let mut query = vec![("fields", "id,name"), ("limit", PAGES_PER_REQUEST)];
            if let Some(cursor) = &after {
                query.push(("after", cursor));
            }
            let url = self.url(&["me", "accounts"], &query)?;
            let response = self.call(Method::GET, url, Some(user_token), None).await?;
            let data = response
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| GraphError::Transport("Page list without data".into()))?;
            for page in data {
                let id = required_text(page, "/id", "the Page id")?;
                let name = optional_text(page, "/name").unwrap_or_else(|| id.clone());
                pages.push(ManagedPage { id, name });
            }
            after = response
                .pointer("/paging/next")
                .and_then(|_| optional_text(&response, "/paging/cursors/after"));
            if after.is_none() {
                break;
            }
        }
        Ok(pages)
    }

    /// GET `{base}/{page_id}?fields=access_token,name` with the user token: the Page access
    /// token (Meta refuses when the user does not manage the Page).
    pub async fn page_access(
        &self,
        user_token: &str,
        page_id: &str,
    ) -> Result<PageAccess, GraphError> {
        let url = self.url(&[page_id], &[("fields", "access_token,name")])?;
        let response = self.call(Method::GET, url, Some(user_token), None).await?;
        Ok(PageAccess {
            access_token: required_text(&response, "/access_token", "the Page access token")?,
            name: optional_text(&response, "/name"),
        })
    }

    /// GET `{base}/{page_id}?fields=id,name` with `page_token`: proves the token reads that Page
    /// (Meta refuses a token of another Page).
    pub async fn page_profile(
        &self,
        page_token: &str,
        page_id: &str,
    ) -> Result<PageProfile, GraphError> {
        let url = self.url(&[page_id], &[("fields", "id,name")])?;
        let response = self.call(Method::GET, url, Some(page_token), None).await?;
        Ok(PageProfile {
            id: required_text(&response, "/id", "the Page id")?,
            name: optional_text(&response, "/name"),
        })
    }

    /// POST `{base}/{page_id}/subscribed_apps?subscribed_fields=…` ([`PAGE_SUBSCRIBED_FIELDS`])
    /// with the Page token: the app receives the Page's Messenger webhooks.
    pub async fn subscribe_page(&self, page_token: &str, page_id: &str) -> Result<(), GraphError> {
        let url = self.url(
            &[page_id, "subscribed_apps"],
            &[("subscribed_fields", PAGE_SUBSCRIBED_FIELDS)],
        )?;
        let response = self.call(Method::POST, url, Some(page_token), None).await?;
        confirmed(&response, "the Page subscription")
    }

    /// DELETE `{base}/{page_id}/subscribed_apps` with the Page token: no more webhooks.
    pub async fn unsubscribe_page(
        &self,
        page_token: &str,
        page_id: &str,
    ) -> Result<(), GraphError> {
        let url = self.url(&[page_id, "subscribed_apps"], &[])?;
        let response = self
            .call(Method::DELETE, url, Some(page_token), None)
            .await?;
        confirmed(&response, "the Page unsubscription")
    }

    /// GET `{base}/me/messenger_profile?fields=persistent_menu` with the Page token; Meta's
    /// answer as is (`{"data":[{"persistent_menu":[…]}]}`, `{"data":[]}` when none is set).
    pub async fn persistent_menu(&self, page_token: &str) -> Result<Value, GraphError> {
        let url = self.url(
            &["me", "messenger_profile"],
            &[("fields", "persistent_menu")],
        )?;
        self.call(Method::GET, url, Some(page_token), None).await
    }

    /// POST `{base}/me/messenger_profile` `{"persistent_menu": menu}` with the Page token.
    pub async fn set_persistent_menu(
        &self,
        page_token: &str,
        menu: &[Value],
    ) -> Result<(), GraphError> {
        let url = self.url(&["me", "messenger_profile"], &[])?;
        let body = json!({ "persistent_menu": menu });
        let response = self
            .call(Method::POST, url, Some(page_token), Some(&body))
            .await?;
        confirmed(&response, "the persistent menu")
    }

    /// DELETE `{base}/me/messenger_profile` `{"fields":["persistent_menu"]}` with the Page token.
    pub async fn delete_persistent_menu(&self, page_token: &str) -> Result<(), GraphError> {
        let url = self.url(&["me", "messenger_profile"], &[])?;
        let body = json!({ "fields": ["persistent_menu"] });
        let response = self
            .call(Method::DELETE, url, Some(page_token), Some(&body))
            .await?;
        confirmed(&response, "the persistent menu deletion")
    }
}
