//! `--mode portal --op show`.
//!
//! # Grammar
//!
//! One line per listening portal, newest first:
//!
//! ```text
//! Portal: <IPv4>:<port>,<tpgt>
//! Portal: [<IPv6>]:<port>,<tpgt>
//! ```
//!
//! The tag is always 1 on tgt. Lines not starting with `Portal:` are skipped. Errors: an address
//! that is not `ADDR:PORT` (IPv6 in brackets), a tag that is not a 16-bit number.

use core::fmt::Write as _;
use std::net::SocketAddr;

use crate::error::{Grammar, ShowError, ShowProblem};
use crate::show::{err, lines};

/// One listening portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortalEntry {
    /// Address and port.
    pub addr: SocketAddr,
    /// Portal group tag (always 1 on tgt).
    pub tpgt: u16,
}

const G: Grammar = Grammar::Portals;

/// Parses the reply text of `show` for portals. See the module doc for the grammar.
///
/// # Errors
/// A [`ShowError`] naming the first malformed `Portal:` line.
pub fn parse_portals(text: &str) -> Result<Vec<PortalEntry>, ShowError> {
    let mut out = Vec::new();
    for line in lines(text) {
        let Some(rest) = line.text.strip_prefix("Portal:") else {
            continue;
        };
        let rest = rest.trim();
        let (addr, tag) = rest
            .rsplit_once(',')
            .ok_or_else(|| err(G, &line, ShowProblem::BadValue("`ADDR:PORT,TPGT`")))?;
        let tpgt = tag
            .parse()
            .map_err(|_| err(G, &line, ShowProblem::BadNumber("portal group tag")))?;
        let addr: SocketAddr = addr.parse().map_err(|_| {
            err(
                G,
                &line,
                ShowProblem::BadValue("`ADDR:PORT` with IPv6 in brackets"),
            )
        })?;
        // tgtd prints no scope id; one in the text is dropped, as tgtd would not match it.
        let addr = SocketAddr::new(addr.ip(), addr.port());
        out.push(PortalEntry { addr, tpgt });
    }
    Ok(out)
}

/// Writes `portals` the way tgtd prints them.
pub fn render_portals(portals: &[PortalEntry]) -> String {
    let mut s = String::new();
    for p in portals {
        // A scope id or flow info would not parse back; tgtd never prints them.
        let addr = SocketAddr::new(p.addr.ip(), p.addr.port());
        let _ = writeln!(s, "Portal: {addr},{}", p.tpgt);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_and_v6() {
        let p = parse_portals("Portal: [::1]:3260,1\nPortal: 127.0.0.1:3261,1\n\0");
        let want = vec![
            PortalEntry {
                addr: "[::1]:3260".parse().unwrap(),
                tpgt: 1,
            },
            PortalEntry {
                addr: "127.0.0.1:3261".parse().unwrap(),
                tpgt: 1,
            },
        ];
        assert_eq!(p.as_ref(), Ok(&want));
        assert_eq!(
            render_portals(&want),
            "Portal: [::1]:3260,1\nPortal: 127.0.0.1:3261,1\n"
        );
    }

    #[test]
    fn malformed_lines_are_errors_and_others_skipped() {
        assert_eq!(parse_portals("hello\n"), Ok(vec![]));
        for bad in [
            "Portal: 1.2.3.4:3260\n",
            "Portal: 1.2.3.4:3260,x\n",
            "Portal: ::1:3260,1\n",
            "Portal: host:3260,1\n",
        ] {
            assert!(
                parse_portals(bad).is_err_and(|e| e.line == 1 && e.grammar == G),
                "{bad}"
            );
        }
    }
}
