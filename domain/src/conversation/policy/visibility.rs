//! Who may see a conversation (contract 0.3, visibility rule): everyone holding
//! `conversations.view_all`; otherwise its assignee, and, while it is unassigned, the members of
//! its division (or everyone, when it has no division).

use uuid::Uuid;

use crate::Permission;

/// The agent looking, with the facts visibility depends on.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    /// The agent.
    pub agent_id: Uuid,
    /// Whether it holds `conversations.view_all`.
    pub sees_all: bool,
    /// The divisions it belongs to.
    pub divisions: &'a [Uuid],
}

impl<'a> Viewer<'a> {
    /// Agent `agent_id` with its effective `permissions` and its `divisions`.
    pub fn new(agent_id: Uuid, permissions: &[Permission], divisions: &'a [Uuid]) -> Self {
        Self {
            agent_id,
            sees_all: permissions.contains(&Permission::ConversationsViewAll),
            divisions,
        }
    }
}

/// Where a conversation sits: its assignee and its division.
#[derive(Debug, Clone, Copy, Default)]
pub struct Placement {
    /// The assigned agent, if any.
    pub assigned_agent_id: Option<Uuid>,
    /// The division, if any.
    pub division_id: Option<Uuid>,
}

/// Whether `viewer` may see a conversation placed at `placement`.
pub fn may_see(viewer: &Viewer<'_>, placement: &Placement) -> bool {
    if viewer.sees_all {
        return true;
    }
    match placement.assigned_agent_id {
        Some(assignee) => assignee == viewer.agent_id,
        None => placement
            .division_id
            .is_none_or(|division| viewer.divisions.contains(&division)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);
    const SALES: Uuid = Uuid::from_u128(10);
    const SUPPORT: Uuid = Uuid::from_u128(11);

    fn agent(divisions: &[Uuid]) -> Viewer<'_> {
        Viewer::new(ME, &[Permission::ConversationsView], divisions)
    }

    fn placed(assigned: Option<Uuid>, division: Option<Uuid>) -> Placement {
        Placement {
            assigned_agent_id: assigned,
            division_id: division,
        }
    }

    #[test]
    fn view_all_sees_every_conversation() {
        let viewer = Viewer::new(ME, &[Permission::ConversationsViewAll], &[]);
        assert!(may_see(&viewer, &placed(Some(OTHER), Some(SALES))));
    }

    #[test]
    fn an_assignee_sees_its_own_conversation_whatever_the_division() {
        assert!(may_see(&agent(&[]), &placed(Some(ME), Some(SALES))));
    }

    #[test]
    fn a_conversation_assigned_to_another_agent_is_hidden() {
        assert!(!may_see(
            &agent(&[SALES]),
            &placed(Some(OTHER), Some(SALES))
        ));
    }

    #[test]
    fn an_unassigned_conversation_is_seen_by_its_division_only() {
        assert!(may_see(&agent(&[SALES]), &placed(None, Some(SALES))));
        assert!(!may_see(&agent(&[SALES]), &placed(None, Some(SUPPORT))));
    }

    #[test]
    fn an_unassigned_conversation_without_division_is_seen_by_everyone() {
        assert!(may_see(&agent(&[]), &placed(None, None)));
    }
}
