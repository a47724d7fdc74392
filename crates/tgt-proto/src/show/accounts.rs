//! `--mode account --op show`.
//!
//! # Grammar
//!
//! ```text
//! Account list:
//!     <user>
//!     <user>
//! ```
//!
//! With no account at all the reply is empty (not even the header line). Passwords are never
//! shown. Unknown unindented lines and their children are skipped. Error: a
//! user line before any `Account list:` header or other unindented line.

use crate::error::{Grammar, ShowError, ShowProblem};
use crate::show::{err, lines};

const G: Grammar = Grammar::Accounts;

/// Parses the reply text of `show` for accounts into the user names, in tgtd's order.
///
/// # Errors
/// A [`ShowError`] naming the first malformed line.
pub fn parse_accounts(text: &str) -> Result<Vec<String>, ShowError> {
    let mut users = Vec::new();
    let mut in_list = false;
    let mut seen_top = false;
    for line in lines(text) {
        if line.level == 0 {
            seen_top = true;
            in_list = line.text.trim_end() == "Account list:";
            continue;
        }
        if in_list {
            if line.level == 1 {
                users.push(line.text.to_owned());
            }
        } else if !seen_top {
            return Err(err(G, &line, ShowProblem::Orphan("`Account list:`")));
        }
    }
    Ok(users)
}

/// Writes `users` the way tgtd prints them.
pub fn render_accounts(users: &[String]) -> String {
    let mut s = String::from("Account list:\n");
    for u in users {
        s.push_str("    ");
        s.push_str(u);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_users() {
        let users = vec!["out1".to_owned(), "u1".to_owned()];
        let text = render_accounts(&users);
        assert_eq!(text, "Account list:\n    out1\n    u1\n");
        assert_eq!(parse_accounts(&text), Ok(users));
        assert_eq!(parse_accounts("Account list:\n"), Ok(vec![]));
        assert_eq!(parse_accounts(""), Ok(vec![]));
        assert_eq!(
            parse_accounts("Other:\n    x\nAccount list:\n    y\n"),
            Ok(vec!["y".to_owned()])
        );
        assert!(parse_accounts("    u1\n").is_err_and(|e| e.line == 1));
    }
}
