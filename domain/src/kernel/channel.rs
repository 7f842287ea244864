//! The messaging channels, and the one place that spells their account keys.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::message::{UnknownValue, STANDARD_WINDOW_HOURS};

/// A messaging channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Whatsapp,
    Instagram,
    Email,
    Messenger,
}

impl Channel {
    /// Every channel, in the contract's order.
    pub const ALL: [Channel; 4] = [
        Channel::Whatsapp,
        Channel::Instagram,
        Channel::Email,
        Channel::Messenger,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Whatsapp => "whatsapp",
            Channel::Instagram => "instagram",
            Channel::Email => "email",
            Channel::Messenger => "messenger",
        }
    }

    /// Whether a human agent may answer after Meta's 24-hour window, for up to
    /// [`HUMAN_AGENT_WINDOW_DAYS`], with the [`MessageTag::HumanAgent`] tag.
    pub fn has_human_agent_tag(self) -> bool {
        matches!(self, Channel::Messenger | Channel::Instagram)
    }

    /// The `account_key` of this channel's integration account for `id`, the provider's id of the
    /// account: `wa-{phone_number_id}` for WhatsApp, `fb-{page_id}` for Messenger,
    /// `ig-{ig_user_id}` for Instagram (the ids their webhooks carry, so an inbound event finds
    /// its account by key), and the lower-cased inbound address for email.
    pub fn account_key(self, id: &str) -> String {
        match self {
            Channel::Whatsapp => format!("wa-{id}"),
            Channel::Messenger => format!("fb-{id}"),
            Channel::Instagram => format!("ig-{id}"),
            Channel::Email => id.to_lowercase(),
        }
    }

    /// The customer-service window when the channel has no active chat-expiration rule
    /// (email has none).
    pub fn default_window_hours(self) -> Option<u32> {
        match self {
            Channel::Email => None,
            _ => Some(STANDARD_WINDOW_HOURS),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownValue(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_keys_name_the_provider_account_per_channel() {
        assert_eq!(Channel::Whatsapp.account_key("1061"), "wa-1061");
        assert_eq!(Channel::Messenger.account_key("2002"), "fb-2002");
        assert_eq!(Channel::Instagram.account_key("1784"), "ig-1784");
        assert_eq!(
            Channel::Email.account_key("Support@Shop.Example"),
            "support@shop.example"
        );
    }

    #[test]
    fn channels_parse_from_their_wire_names() {
        for channel in Channel::ALL {
            assert_eq!(channel.as_str().parse::<Channel>(), Ok(channel));
        }
        assert!("sms".parse::<Channel>().is_err());
    }
}
