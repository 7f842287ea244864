//! Who may change an internal note: its author edits it; its author or a manager
//! (`conversations.manage`) deletes it.

use uuid::Uuid;

use crate::Permission;

/// Whether `agent` may replace the text of a note written by `author`.
pub fn may_edit(agent: Uuid, author: Uuid) -> bool {
    agent == author
}

/// Whether `agent` (holding `permissions`) may delete a note written by `author`.
pub fn may_delete(agent: Uuid, permissions: &[Permission], author: Uuid) -> bool {
    agent == author || permissions.contains(&Permission::ConversationsManage)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTHOR: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);

    #[test]
    fn only_the_author_edits_a_note() {
        assert!(may_edit(AUTHOR, AUTHOR));
        assert!(!may_edit(OTHER, AUTHOR));
    }

    #[test]
    fn the_author_or_a_manager_deletes_a_note() {
        assert!(may_delete(AUTHOR, &[], AUTHOR));
        assert!(!may_delete(
            OTHER,
            &[Permission::ConversationsReply],
            AUTHOR
        ));
        assert!(may_delete(
            OTHER,
            &[Permission::ConversationsManage],
            AUTHOR
        ));
    }
}
