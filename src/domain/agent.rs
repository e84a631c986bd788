//! Agents (DESIGN §9): a tenant's extensions with a name and the groups they answer for,
//! named `Name(extension)` in events and reports.

use std::fmt;

use super::text::display_problem;

/// An agent's extension: what a call's `agent` is matched by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Extension(String);

impl Extension {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let ok = (1..=64).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+*#@".contains(c));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "`{raw}` is not an extension: use 1-64 letters, digits or . _ - + * # @"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The extension a call's `agent` names, as the PBX sent it: the text in its trailing
/// parentheses (`Agent1(200)` → `200`), or the whole value (`200`). The SQL function
/// `agent_extension` (sql/V15) reads it the same way; `None` for a blank value.
pub fn agent_extension(agent: &str) -> Option<&str> {
    let agent = agent.trim_matches(' ');
    let inner = agent
        .strip_suffix(')')
        .and_then(|rest| rest.rfind('(').map(|open| &rest[open + 1..]))
        .filter(|inner| !inner.contains(')'))
        .map(|inner| inner.trim_matches(' '))
        .filter(|inner| !inner.is_empty());
    inner.or((!agent.is_empty()).then_some(agent))
}

/// An agent's name: one line of text without parentheses, so `Name(extension)` reads
/// back unambiguously.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentName(String);

impl AgentName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() || raw.chars().count() > 100 {
            return Err("a name has 1 to 100 characters".into());
        }
        if raw.contains(['(', ')']) {
            return Err(
                "a name must not contain parentheses (reports write `Name(extension)`)".into(),
            );
        }
        match display_problem(raw) {
            Some(problem) => Err(format!("a name {problem}")),
            None => Ok(Self(raw.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group or skill, as calls carry it in `group`; compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() || raw.chars().count() > 64 {
            return Err(format!("`{raw}` is not a group name: 1 to 64 characters"));
        }
        if raw.contains(',') {
            return Err(format!(
                "`{raw}` is not a group name: commas separate groups"
            ));
        }
        match display_problem(raw) {
            Some(problem) => Err(format!("a group name {problem}")),
            None => Ok(Self(raw.to_owned())),
        }
    }

    /// A comma-separated list (`Sales,Support`), each name once.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, String> {
        let mut groups: Vec<Self> = Vec::new();
        for part in raw.split(',') {
            let group = Self::parse(part)?;
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        Ok(groups)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An agent of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub extension: Extension,
    pub name: AgentName,
    pub groups: Vec<GroupName>,
}

impl Agent {
    /// How events and reports name the agent: `Agent1(200)`.
    pub fn key(&self) -> String {
        format!("{}({})", self.name.as_str(), self.extension.as_str())
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g.as_str() == group)
    }
}

/// What [`put_capped`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Added,
    Replaced,
    /// The agent is new and the tenant has its `max_agents` already.
    OverCap(i32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_is_read_as_the_sql_function_reads_it() {
        // The same cases as sql/V15's agent_extension, which the reports test checks
        // against PostgreSQL through the calls it counts.
        let cases = [
            ("Agent1(200)", Some("200")),
            ("200", Some("200")),
            (" Ana Pop ( 201 ) ", Some("201")),
            ("()", Some("()")),
            ("x()", Some("x()")),
            ("(a)(b)", Some("b")),
            ("a(b)c", Some("a(b)c")),
            ("", None),
            ("   ", None),
        ];
        for (agent, extension) in cases {
            assert_eq!(agent_extension(agent), extension, "{agent:?}");
        }
    }

    #[test]
    fn names_and_groups_are_checked() {
        assert!(Extension::parse("200").is_ok());
        assert!(Extension::parse("ion.popescu").is_ok());
        assert!(Extension::parse("2 00").is_err());
        assert!(Extension::parse("").is_err());
        assert!(AgentName::parse("Agent1").is_ok());
        assert!(AgentName::parse("Ana (Sales)").is_err());
        assert!(AgentName::parse("Ana\u{202E}").is_err());
        let groups = GroupName::parse_list("Sales, Support,Sales").unwrap();
        let names: Vec<&str> = groups.iter().map(GroupName::as_str).collect();
        assert_eq!(names, ["Sales", "Support"]);
        assert!(GroupName::parse_list("Sales,,Support").is_err());
        let agent = Agent {
            extension: Extension::parse("200").unwrap(),
            name: AgentName::parse("Agent1").unwrap(),
            groups,
        };
        assert_eq!(agent.key(), "Agent1(200)");
        assert!(agent.in_group("Support"));
    }
}
