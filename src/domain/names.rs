//! Names of shares, schemas, tables and recipients: the one rule every way in (config file,
//! policy files, admin API, CLI) applies, so that a name can never forge log lines, paths or
//! terminal output.

/// What kind of object a name is for (in messages) and whether it may contain dots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A share (dots allowed).
    Share,
    /// A schema.
    Schema,
    /// A table alias.
    Table,
    /// A recipient (dots allowed).
    Recipient,
}

impl NameKind {
    fn label(self) -> &'static str {
        match self {
            Self::Share => "share",
            Self::Schema => "schema",
            Self::Table => "table",
            Self::Recipient => "recipient",
        }
    }

    fn allows_dot(self) -> bool {
        matches!(self, Self::Share | Self::Recipient)
    }
}

/// Checks a name: 1 to 255 characters, no spaces, `/`, `\`, control characters (newlines,
/// escape sequences), and no `.` in schema and table names; `.` and `..` alone are refused.
pub fn check_name(kind: NameKind, name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.chars().count() > 255
        || name == "."
        || name == ".."
        || name.chars().any(|c| {
            c == ' '
                || c == '/'
                || c == '\\'
                || c.is_control()
                || c.is_whitespace()
                || (!kind.allows_dot() && c == '.')
        });
    if bad {
        return Err(format!(
            "invalid {} name '{}': names are 1-255 characters without spaces, '/', '\\', \
             control characters{}",
            kind.label(),
            name.escape_debug(),
            if kind.allows_dot() { "" } else { " or '.'" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_forge_lines_or_paths_are_refused() {
        for bad in [
            "a/../b",
            "a\nb",
            "",
            ".",
            "..",
            "a b",
            "x\u{1b}[31m",
            "a\\b",
            "tab\there",
        ] {
            assert!(check_name(NameKind::Recipient, bad).is_err(), "{bad:?}");
        }
        let msg = check_name(NameKind::Recipient, "a\nb")
            .err()
            .unwrap_or_default();
        assert!(!msg.contains('\n'), "the message itself is one line: {msg}");
        assert!(check_name(NameKind::Recipient, "acme.eu-west_1").is_ok());
        assert!(check_name(NameKind::Table, "a.b").is_err());
        assert!(check_name(NameKind::Share, "sales.q1").is_ok());
    }
}
