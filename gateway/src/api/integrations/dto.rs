//! Request and response bodies of the Integrations tag (channel settings and integration
//! accounts), the stored rows and their API form, and the validation of an account's config
//! (derived account keys, throughput, sealed values). The connect flows' own bodies are in their
//! channel's module.

use chrono::{DateTime, Utc};
use omnistream_commands::infra::secrets::SecretBox;
use omnistream_domain::Channel;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::{ApiError, Result, Violations};
use crate::http::extract::{check_text, nullable, present, Validate};

/// Parses the `{channel}` path segment (400 `validation_error` otherwise).
pub(super) fn parse_channel(raw: &str) -> Result<Channel> {
    raw.parse().map_err(|_| {
        ApiError::invalid_field("channel", "must be whatsapp, instagram, email or messenger")
    })
}

/// `Integration`: a channel's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct Integration {
    pub id: Uuid,
    pub channel: String,
    pub is_active: bool,
    /// Sensitive values masked.
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub division_id: Option<Uuid>,
}

impl Integration {
    /// What `GET /api/integrations/{channel}` answers for a channel with no settings: a nil
    /// id, inactive, `{}`.
    pub(super) fn unconfigured(channel: Channel) -> Self {
        let now = Utc::now();
        Integration {
            id: Uuid::nil(),
            channel: channel.as_str().into(),
            is_active: false,
            config: Map::new(),
            created_at: now,
            updated_at: now,
            division_id: None,
        }
    }
}

/// An `integrations` row (its config sealed).
#[derive(sqlx::FromRow)]
pub(super) struct IntegrationRow {
    pub(super) id: Uuid,
    /// The owner: sealed config values are bound to it.
    pub(super) tenant_id: Uuid,
    pub(super) channel: String,
    pub(super) is_active: bool,
    pub(super) config: Value,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) division_id: Option<Uuid>,
}

impl IntegrationRow {
    /// The API form, sensitive values masked.
    pub(super) fn into_api(self, secrets: &SecretBox) -> Integration {
        Integration {
            id: self.id,
            channel: self.channel,
            is_active: self.is_active,
            config: secrets.mask_config(
                self.tenant_id,
                self.config.as_object().unwrap_or(&Map::new()),
            ),
            created_at: self.created_at,
            updated_at: self.updated_at,
            division_id: self.division_id,
        }
    }
}

/// `UpsertIntegration`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertIntegration {
    #[serde(default, deserialize_with = "present")]
    pub(super) is_active: Option<bool>,
    /// Merged over the stored config; masked values (`****…`) are not overwritten; `null` removes a key.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub(super) config: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub(super) division_id: Option<Option<Uuid>>,
}

impl Validate for UpsertIntegration {
    fn validate(&mut self, violations: &mut Violations) {
        if let Some(config) = &self.config {
            refuse_sealed_values(config, violations);
        }
    }
}

/// `{message, channel}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationDeleted {
    pub message: String,
    pub channel: String,
}

/// `IntegrationAccount`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationAccount {
    pub id: Uuid,
    pub channel: String,
    /// Unique within a channel; inbound webhooks are routed by it (e.g. `wa-123456789`).
    pub account_key: String,
    pub display_name: String,
    pub is_active: bool,
    pub is_default: bool,
    /// Sensitive values masked.
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub division_id: Option<Uuid>,
    pub verify_token: String,
    /// Where the channel's webhooks must be sent.
    pub webhook_url: String,
}

/// An `integration_accounts` row (its config sealed).
#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    pub id: Uuid,
    /// The owner: sealed config values are bound to it.
    pub tenant_id: Uuid,
    pub channel: String,
    pub account_key: String,
    pub display_name: String,
    pub is_active: bool,
    pub is_default: bool,
    pub config: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub division_id: Option<Uuid>,
    pub verify_token: String,
}

impl AccountRow {
    /// The API form: sensitive values masked, and the URL (under `public_base_url`) of the
    /// receiver the channel's webhooks must be sent to.
    pub(super) fn into_api(self, secrets: &SecretBox, public_base_url: &str) -> IntegrationAccount {
        let receiver = match self.channel.as_str() {
            "instagram" => "/webhooks/instagram",
            "messenger" => "/webhooks/messenger",
            "email" => "/webhooks/email",
            _ => "/webhooks/meta",
        };
        IntegrationAccount {
            webhook_url: format!("{public_base_url}{receiver}"),
            config: secrets.mask_config(
                self.tenant_id,
                self.config.as_object().unwrap_or(&Map::new()),
            ),
            id: self.id,
            channel: self.channel,
            account_key: self.account_key,
            display_name: self.display_name,
            is_active: self.is_active,
            is_default: self.is_default,
            created_at: self.created_at,
            updated_at: self.updated_at,
            division_id: self.division_id,
            verify_token: self.verify_token,
        }
    }

    /// The decrypted config (for Graph calls).
    pub(super) fn opened_config(&self, secrets: &SecretBox) -> Result<Map<String, Value>> {
        secrets
            .open_config(
                self.tenant_id,
                self.config.as_object().unwrap_or(&Map::new()),
            )
            .map_err(|error| ApiError::Internal(error.into()))
    }
}

/// Filter of the account list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountListQuery {
    pub(super) channel: Option<String>,
}

/// `CreateIntegrationAccount`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegrationAccount {
    /// `whatsapp`, `instagram`, `email` or `messenger`.
    pub(super) channel: String,
    /// Required except for WhatsApp (`wa-<phone_number_id>`).
    #[serde(default)]
    pub(super) account_key: Option<String>,
    /// Default: the account key.
    #[serde(default)]
    pub(super) display_name: Option<String>,
    /// Default false.
    #[serde(default)]
    pub(super) is_active: bool,
    /// Default false; the channel's first account becomes the default anyway.
    #[serde(default)]
    pub(super) is_default: bool,
    #[serde(default)]
    pub(super) division_id: Option<Uuid>,
    /// WhatsApp: `phone_number_id`, `waba_id` and `access_token` are required; `pin` (two-step
    /// verification PIN) registers the number; `throughput_mps` (1..1000, default 80, Meta's tier
    /// for the number) paces outbound sends so they never trip Meta's throughput limit.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub(super) config: Option<Map<String, Value>>,
}

/// The trimmed, non-empty string at `key`.
pub(super) fn config_text<'a>(config: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    config
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Config values that pose as sealed ones (`enc:…`) are refused: only the server seals values,
/// and a ciphertext pasted from elsewhere must never be stored.
pub(super) fn refuse_sealed_values(config: &Map<String, Value>, violations: &mut Violations) {
    if let Some(key) = omnistream_commands::infra::secrets::first_sealed_value(config) {
        violations.add(format!("config.{key}"), "must not start with `enc:`");
    }
}

/// `config.throughput_mps`, when given: the number's Meta throughput tier, which paces sends.
fn check_throughput(config: &Map<String, Value>, violations: &mut Violations) {
    let max = omnistream_commands::channels::whatsapp::MAX_THROUGHPUT_MPS;
    match config.get("throughput_mps") {
        None | Some(Value::Null) => {}
        Some(value)
            if value
                .as_u64()
                .is_some_and(|mps| (1..=u64::from(max)).contains(&mps)) => {}
        Some(_) => violations.add(
            "config.throughput_mps",
            format!("must be an integer from 1 to {max} (messages per second)"),
        ),
    }
}

impl Validate for CreateIntegrationAccount {
    fn validate(&mut self, violations: &mut Violations) {
        let channel = self.channel.parse::<Channel>();
        if channel.is_err() {
            violations.add("channel", "must be whatsapp, instagram, email or messenger");
        }
        let config = self.config.get_or_insert_with(Map::new);
        check_throughput(config, violations);
        refuse_sealed_values(config, violations);
        if channel == Ok(Channel::Whatsapp) {
            for key in ["phone_number_id", "waba_id", "access_token"] {
                if config_text(config, key).is_none() {
                    violations.add(format!("config.{key}"), "is required for WhatsApp accounts");
                }
            }
            if let Some(phone_number_id) = config_text(config, "phone_number_id") {
                let derived = Channel::Whatsapp.account_key(phone_number_id);
                if self
                    .account_key
                    .as_deref()
                    .is_some_and(|k| k.trim() != derived)
                {
                    violations.add("account_key", format!("is derived for WhatsApp: {derived}"));
                }
                self.account_key = Some(derived);
            }
        } else if let Ok(channel @ (Channel::Messenger | Channel::Instagram)) = channel {
            // The key names the Page or professional account whose token proves it.
            let (id_key, token_key) = match channel {
                Channel::Messenger => ("page_id", "page_access_token"),
                _ => ("ig_user_id", "access_token"),
            };
            for key in [id_key, token_key] {
                if config_text(config, key).is_none() {
                    violations.add(format!("config.{key}"), "is required for this channel");
                }
            }
            if let Some(id) = config_text(config, id_key) {
                let derived = channel.account_key(id);
                if self
                    .account_key
                    .as_deref()
                    .is_some_and(|k| k.trim() != derived)
                {
                    violations.add(
                        "account_key",
                        format!("is derived for this channel: {derived}"),
                    );
                }
                self.account_key = Some(derived);
            }
        } else if channel.is_ok() {
            match &mut self.account_key {
                Some(key) => check_text(violations, "account_key", key, 1, 200),
                None => violations.add("account_key", "is required for this channel"),
            }
            if channel == Ok(Channel::Email) {
                if let Some(key) = &mut self.account_key {
                    *key = Channel::Email.account_key(key);
                }
            }
        }
        if let Some(name) = &mut self.display_name {
            check_text(violations, "display_name", name, 1, 200);
        }
    }
}

/// `UpdateIntegrationAccount`: every field optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegrationAccount {
    #[serde(default, deserialize_with = "present")]
    pub(super) account_key: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(super) display_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(super) is_active: Option<bool>,
    /// `true` makes it the default; `false` on the default is refused (409 `default_account_required`).
    #[serde(default, deserialize_with = "present")]
    pub(super) is_default: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub(super) division_id: Option<Option<Uuid>>,
    /// Merged; masked values are not overwritten; `null` removes a key.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub(super) config: Option<Map<String, Value>>,
}

impl Validate for UpdateIntegrationAccount {
    fn validate(&mut self, violations: &mut Violations) {
        if let Some(key) = &mut self.account_key {
            check_text(violations, "account_key", key, 1, 200);
        }
        if let Some(name) = &mut self.display_name {
            check_text(violations, "display_name", name, 1, 200);
        }
        if let Some(config) = &self.config {
            check_throughput(config, violations);
            refuse_sealed_values(config, violations);
        }
    }
}

/// `{message, id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountDeleted {
    pub message: String,
    pub id: Uuid,
}
