//! Who may hand a conversation on: its assignee, or a manager (`conversations.manage`); and who
//! may take one over from another human agent (a manager only).

use uuid::Uuid;

use crate::Permission;

/// Whether `agent` (holding `permissions`) may transfer a conversation assigned to `assignee`.
pub fn may_transfer(agent: Uuid, permissions: &[Permission], assignee: Option<Uuid>) -> bool {
    assignee == Some(agent) || is_manager(permissions)
}

/// Whether an agent holding `permissions` may take a conversation over from another human
/// agent (the aggregate knows whether a human holds it; this says whether that matters).
pub fn may_take_from_human(permissions: &[Permission]) -> bool {
    is_manager(permissions)
}

fn is_manager(permissions: &[Permission]) -> bool {
    permissions.contains(&Permission::ConversationsManage)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);
    const AGENT: &[Permission] = &[Permission::ConversationsReply];
    const MANAGER: &[Permission] = &[
        Permission::ConversationsReply,
        Permission::ConversationsManage,
    ];

    #[test]
    fn the_assignee_may_transfer_its_conversation() {
        assert!(may_transfer(ME, AGENT, Some(ME)));
    }

    #[test]
    fn an_agent_may_not_transfer_another_agents_or_an_unassigned_conversation() {
        assert!(!may_transfer(ME, AGENT, Some(OTHER)));
        assert!(!may_transfer(ME, AGENT, None));
    }

    #[test]
    fn a_manager_may_transfer_any_conversation() {
        assert!(may_transfer(ME, MANAGER, Some(OTHER)));
        assert!(may_transfer(ME, MANAGER, None));
    }

    #[test]
    fn only_a_manager_may_take_over_from_a_human() {
        assert!(may_take_from_human(MANAGER));
        assert!(!may_take_from_human(AGENT));
    }
}
