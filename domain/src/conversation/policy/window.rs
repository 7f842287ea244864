//! The messaging window: how long after the customer's last message free-form messages may be
//! sent on a channel. The aggregate applies it (`Conversation::window_open`); this decides its
//! length from the tenant's chat-expiration rule for the channel.

use crate::Channel;

/// The window of `channel` given the tenant's active chat-expiration rule for it (`rule_hours`,
/// if any): the rule's hours, else the channel's default (24 h); email has none.
pub fn window_hours(channel: Channel, rule_hours: Option<u32>) -> Option<u32> {
    match (channel, rule_hours) {
        (Channel::Email, _) => None,
        (_, Some(hours)) => Some(hours),
        (_, None) => channel.default_window_hours(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_rule_sets_the_window() {
        assert_eq!(window_hours(Channel::Whatsapp, Some(48)), Some(48));
    }

    #[test]
    fn without_a_rule_the_window_is_a_day() {
        assert_eq!(window_hours(Channel::Messenger, None), Some(24));
    }

    #[test]
    fn email_has_no_window_even_with_a_rule() {
        assert_eq!(window_hours(Channel::Email, Some(48)), None);
        assert_eq!(window_hours(Channel::Email, None), None);
    }
}
