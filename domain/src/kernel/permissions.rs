//! The permission catalogue of the API contract (table 0.3) and the fixed system roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! permissions {
    ($($variant:ident => $code:literal, $description:literal, [$admin:literal, $supervisor:literal, $agent:literal];)*) => {
        /// One permission code. Every protected endpoint checks exactly one of these.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission {
            $(
                #[doc = $description]
                $variant,
            )*
        }

        impl Permission {
            /// Every code, in the order of the contract's table.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),*];

            /// The wire code, e.g. `agents.manage`.
            pub fn code(self) -> &'static str {
                match self { $(Permission::$variant => $code,)* }
            }

            /// What the code grants, as the contract describes it.
            pub fn description(self) -> &'static str {
                match self { $(Permission::$variant => $description,)* }
            }

            fn granted_to(self, role: AgentRole) -> bool {
                match self {
                    $(Permission::$variant => match role {
                        AgentRole::Admin => $admin,
                        AgentRole::Supervisor => $supervisor,
                        AgentRole::Agent => $agent,
                    },)*
                }
            }
        }

        impl FromStr for Permission {
            type Err = UnknownPermission;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($code => Ok(Permission::$variant),)*
                    _ => Err(UnknownPermission(s.to_owned())),
                }
            }
        }
    };
}

permissions! {
    ConversationsView => "conversations.view", "List and read visible conversations, with their messages, notes, transfers, scheduled messages and CSAT survey; message search; a contact's conversations", [true, true, true];
    ConversationsViewAll => "conversations.view_all", "Lifts the visibility restriction: see every conversation of the organization", [true, true, false];
    ConversationsReply => "conversations.reply", "Send or schedule messages; mark read; change status and tags; notes; transfer own conversations; take over unassigned or AI-handled conversations; create and submit CSAT; media upload; list, use and favourite quick replies", [true, true, true];
    ConversationsManage => "conversations.manage", "Assign or unassign anyone; transfer or take over any conversation; bulk actions; expire stale conversations; delete other people's notes; cancel other people's scheduled messages", [true, true, false];
    ContactsView => "contacts.view", "List and read contacts", [true, true, true];
    ContactsManage => "contacts.manage", "Update contacts", [true, true, true];
    AgentsView => "agents.view", "List and read agents", [true, true, true];
    AgentsManage => "agents.manage", "Create, update and delete agents; set another agent's online status", [true, false, false];
    DivisionsManage => "divisions.manage", "Divisions tag", [true, true, false];
    QuickRepliesManage => "quick_replies.manage", "Create, update, delete, import and export quick replies", [true, true, false];
    AnalyticsView => "analytics.view", "Analytics tag, CSAT analytics", [true, true, false];
    CampaignsManage => "campaigns.manage", "Campaigns tag. Sending also needs the agent flag can_broadcast", [true, true, false];
    IntegrationsView => "integrations.view", "Read integrations and integration accounts", [true, true, false];
    IntegrationsManage => "integrations.manage", "Every other Integrations endpoint", [true, false, false];
    TemplatesView => "templates.view", "Read WA templates", [true, true, true];
    TemplatesManage => "templates.manage", "Create, sync, delete and patch WA templates", [true, true, false];
    SlaManage => "sla.manage", "SLA tag", [true, true, false];
    WebhooksManage => "webhooks.manage", "Outgoing Webhooks tag", [true, true, false];
    ActivityLogsView => "activity_logs.view", "Activity Logs tag", [true, true, false];
    RolesManage => "roles.manage", "Roles tag", [true, false, false];
    DeveloperAccess => "developer.access", "API Keys tag", [true, true, false];
    AutomationManage => "automation.manage", "Automation tag", [true, true, false];
    AiAgentsManage => "ai_agents.manage", "AI Agents tag", [true, true, false];
    SettingsManage => "settings.manage", "Write working hours, tenant timezone and chat expiration rules", [true, false, false];
    BillingManage => "billing.manage", "Billing tag, except the plan and add-on catalogues", [true, false, false];
}

impl Permission {
    /// The group a code belongs to: the part before the dot (`agents` for `agents.manage`).
    pub fn group(self) -> &'static str {
        self.code()
            .split_once('.')
            .map_or(self.code(), |(group, _)| group)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

/// A string that is not a code of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission code `{0}`")]
pub struct UnknownPermission(pub String);

/// The three system roles. Their permission sets are fixed by the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentRole {
    /// Everything.
    Admin,
    /// Runs the team: everything but agents, roles, integrations writes, settings and billing.
    Supervisor,
    /// Answers conversations.
    Agent,
}

impl AgentRole {
    /// The system roles in the contract's order.
    pub const ALL: [AgentRole; 3] = [AgentRole::Admin, AgentRole::Supervisor, AgentRole::Agent];

    /// The wire name (`admin`, `supervisor`, `agent`).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentRole::Admin => "admin",
            AgentRole::Supervisor => "supervisor",
            AgentRole::Agent => "agent",
        }
    }

    /// The fixed permission set of this system role, in catalogue order.
    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(|p| p.granted_to(self))
            .collect()
    }

    /// Whether `name` is reserved for a system role (compared case-insensitively).
    pub fn is_reserved_name(name: &str) -> bool {
        Self::ALL
            .iter()
            .any(|role| role.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl FromStr for AgentRole {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(AgentRole::Admin),
            "supervisor" => Ok(AgentRole::Supervisor),
            "agent" => Ok(AgentRole::Agent),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

impl fmt::Display for AgentRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a system role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`")]
pub struct UnknownRole(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_the_contracts_25_codes_in_order() {
        assert_eq!(Permission::ALL.len(), 25);
        assert_eq!(Permission::ALL[0].code(), "conversations.view");
        assert_eq!(Permission::ALL[24].code(), "billing.manage");
        for permission in Permission::ALL {
            assert_eq!(permission.code().parse::<Permission>(), Ok(*permission));
        }
    }

    #[test]
    fn system_roles_match_the_contract_table() {
        assert_eq!(AgentRole::Admin.permissions().len(), 25);
        let supervisor = AgentRole::Supervisor.permissions();
        assert!(supervisor.contains(&Permission::DeveloperAccess));
        assert!(!supervisor.contains(&Permission::AgentsManage));
        assert!(!supervisor.contains(&Permission::RolesManage));
        let agent: Vec<&str> = AgentRole::Agent
            .permissions()
            .iter()
            .map(|p| p.code())
            .collect();
        assert_eq!(
            agent,
            [
                "conversations.view",
                "conversations.reply",
                "contacts.view",
                "contacts.manage",
                "agents.view",
                "templates.view"
            ]
        );
    }

    #[test]
    fn groups_are_the_code_prefix() {
        assert_eq!(Permission::QuickRepliesManage.group(), "quick_replies");
        assert_eq!(Permission::DeveloperAccess.group(), "developer");
    }

    #[test]
    fn reserved_role_names_are_case_insensitive() {
        assert!(AgentRole::is_reserved_name(" Admin "));
        assert!(!AgentRole::is_reserved_name("auditor"));
    }
}
