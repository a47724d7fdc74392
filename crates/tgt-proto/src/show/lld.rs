//! `--mode lld --op show`.
//!
//! # Grammar
//!
//! ```text
//! LLDs:
//!     <driver>: <state>
//!         Target <tid>: <name>
//! ```
//!
//! Drivers are `iscsi` and `iser`; states are words like `ready` or `error`. Unknown unindented
//! lines and their children are skipped. Errors: a driver line that is not `<name>: <state>`, a
//! target line before any driver line or with a bad tid.

use crate::error::{Grammar, ShowError, ShowProblem};
use crate::show::{err, key_value, lines};

/// One low-level driver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Lld {
    /// Its name (`iscsi`).
    pub name: String,
    /// Its state as printed (`ready`, `error`, …).
    pub state: String,
    /// Its targets (only `show` of mode lld lists them).
    pub targets: Vec<LldTarget>,
}

/// A target as the driver list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LldTarget {
    /// Target id.
    pub tid: u32,
    /// iSCSI name.
    pub name: String,
}

const G: Grammar = Grammar::Lld;

/// Parses the `LLDs:` section starting at level `base` out of `text`, as `show` of mode lld or
/// system prints it. Used by both grammars; `grammar` names the caller in errors.
pub(crate) fn parse_llds(
    text: &str,
    grammar: Grammar,
    header: &str,
) -> Result<Vec<Lld>, ShowError> {
    let mut llds: Vec<Lld> = Vec::new();
    let mut in_section = false;
    let mut seen_top = false;
    for line in lines(text) {
        if line.level == 0 {
            seen_top = true;
            in_section = line.text.trim_end() == header;
            continue;
        }
        if !in_section {
            if !seen_top {
                return Err(err(grammar, &line, ShowProblem::Orphan("`LLDs:`")));
            }
            continue;
        }
        match line.level {
            1 => {
                let (name, state) = key_value(line.text).ok_or_else(|| {
                    err(grammar, &line, ShowProblem::BadValue("`<driver>: <state>`"))
                })?;
                llds.push(Lld {
                    name: name.to_owned(),
                    state: state.trim().to_owned(),
                    targets: Vec::new(),
                });
            }
            2 => {
                let Some(rest) = line.text.strip_prefix("Target ") else {
                    continue;
                };
                let lld = llds.last_mut().ok_or_else(|| {
                    err(grammar, &line, ShowProblem::Orphan("`<driver>: <state>`"))
                })?;
                let (tid, name) = rest.split_once(": ").ok_or_else(|| {
                    err(
                        grammar,
                        &line,
                        ShowProblem::BadValue("`Target <tid>: <name>`"),
                    )
                })?;
                let tid = tid
                    .parse()
                    .map_err(|_| err(grammar, &line, ShowProblem::BadNumber("target id")))?;
                lld.targets.push(LldTarget {
                    tid,
                    name: name.to_owned(),
                });
            }
            _ => {}
        }
    }
    Ok(llds)
}

/// Parses the reply text of `show` for drivers. See the module doc for the grammar.
///
/// # Errors
/// A [`ShowError`] naming the first malformed line.
pub fn parse_lld(text: &str) -> Result<Vec<Lld>, ShowError> {
    parse_llds(text, G, "LLDs:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_drivers_and_targets() {
        let text = "LLDs:\n    iscsi: ready\n        Target 1: iqn.x:t1\n        Target 2: iqn.x:t2\n    iser: error\n";
        let l = parse_lld(text).unwrap_or_default();
        assert_eq!(l.len(), 2);
        assert_eq!(
            (l[0].name.as_str(), l[0].state.as_str()),
            ("iscsi", "ready")
        );
        assert_eq!(
            l[0].targets,
            vec![
                LldTarget {
                    tid: 1,
                    name: "iqn.x:t1".into()
                },
                LldTarget {
                    tid: 2,
                    name: "iqn.x:t2".into()
                }
            ]
        );
        assert_eq!((l[1].name.as_str(), l[1].state.as_str()), ("iser", "error"));
        assert!(parse_lld("LLDs:\n        Target 1: x\n").is_err_and(|e| e.line == 2));
        assert!(
            parse_lld("LLDs:\n    iscsi: ready\n        Target x: y\n").is_err_and(|e| e.line == 3)
        );
        assert!(parse_lld("LLDs:\n    iscsi\n").is_err_and(|e| e.line == 2));
    }
}
