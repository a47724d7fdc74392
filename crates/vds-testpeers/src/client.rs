//! Reference initiators for cross-checking: libiscsi's `iscsi-ls`, run as a process with a
//! deadline, and [`sendtargets`], a deliberately tiny in-crate SendTargets client that needs no
//! package and also works against istgt (it tolerates istgt's ExpCmdSN after an immediate Text PDU,
//! which makes libiscsi hang). Neither is the project's initiator; they exist to check peers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::PeerError;
use crate::process;

/// Deadline for one `iscsi-ls` run (it hangs forever against istgt).
pub const ISCSI_LS_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `iscsi-ls <url>` (e.g. `iscsi://127.0.0.1:3260`, `iscsi://[::1]:3260`,
/// `iscsi://user%secret@127.0.0.1:3260`, with `?target_user=U&target_password=S` for mutual CHAP) and
/// returns its `Target:X Portal:Y` lines as `(X, Y)`, Y as printed (`127.0.0.1:3260,1`).
///
/// # Errors
/// [`PeerError::NotInstalled`] without libiscsi-bin; [`PeerError::CommandFailed`] with iscsi-ls's
/// message (`Connection refused(111)`, `Authentication failure(513)`); [`PeerError::Timeout`] after
/// [`ISCSI_LS_TIMEOUT`].
pub fn iscsi_ls(url: &str) -> Result<Vec<(String, String)>, PeerError> {
    let bin = process::find_binary("iscsi-ls")?;
    let mut cmd = Command::new(bin);
    cmd.arg(url);
    let out = process::run_ok(&mut cmd, ISCSI_LS_TIMEOUT, None)?;
    Ok(parse_iscsi_ls(&out))
}

fn parse_iscsi_ls(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("Target:")?;
            let (target, portal) = rest.split_once(" Portal:")?;
            Some((target.to_owned(), portal.trim().to_owned()))
        })
        .collect()
}

/// Checks that every program is installed (on `PATH` or in an sbin directory).
///
/// # Errors
/// [`PeerError::NotInstalled`] for the first missing one: "tgtd not found: run scripts/install-deps.sh".
pub fn require(binaries: &[&str]) -> Result<(), PeerError> {
    binaries
        .iter()
        .try_for_each(|b| process::find_binary(b).map(drop))
}

/// Where `scripts/install-deps.sh` installs the Python tools the tests run (DMTF's Redfish
/// validator, the python-redfish-library, schemathesis): `$VDS_TEST_VENV`, else this directory.
pub const DEFAULT_TEST_VENV: &str = "/opt/vds-test-venv";

/// The program `name` of the tests' Python environment (`bin/NAME` of [`DEFAULT_TEST_VENV`] or
/// `$VDS_TEST_VENV`); `python` is its interpreter, which has the libraries.
///
/// # Errors
/// [`PeerError::NotInstalled`] when it is not there: "… run scripts/install-deps.sh".
pub fn python_tool(name: &str) -> Result<std::path::PathBuf, PeerError> {
    let venv = std::env::var_os("VDS_TEST_VENV")
        .filter(|v| !v.is_empty())
        .map_or_else(|| std::path::PathBuf::from(DEFAULT_TEST_VENV), Into::into);
    let path = venv.join("bin").join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(PeerError::NotInstalled {
            binary: path.display().to_string(),
        })
    }
}

/// The iSCSI URL libiscsi tools take for a portal: `iscsi://127.0.0.1:3260`.
pub fn url(portal: &str) -> String {
    format!("iscsi://{portal}")
}

/// The initiator name [`sendtargets`] logs in with.
pub const RAW_INITIATOR_NAME: &str = "iqn.2026-11.test.vds:testpeers";

/// Runs one SendTargets=All discovery session against `portal` without authentication and returns
/// every `(TargetName, TargetAddress)` pair in order, the address as sent (`"127.0.0.2:3262,2"`).
/// A target with several addresses gives several pairs; one with none gives `(name, "")`. Each
/// socket operation has `timeout`. Multi-PDU Text responses are joined as one byte stream.
///
/// # Errors
/// [`PeerError::Io`] for connection problems and timeouts, [`PeerError::Parse`] for a PDU this
/// minimal client does not expect (login rejected, wrong opcode).
pub fn sendtargets(portal: &str, timeout: Duration) -> Result<Vec<(String, String)>, PeerError> {
    let addr: SocketAddr = portal
        .parse()
        .map_err(|_| PeerError::InvalidArgument(format!("portal {portal:?} is not ADDR:PORT")))?;
    let ctx = format!("SendTargets via {portal}");
    let io = |e| PeerError::io(ctx.clone(), e);
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let bad = |detail: String| PeerError::Parse {
        command: ctx.clone(),
        detail,
    };

    let keys = format!(
        "InitiatorName={RAW_INITIATOR_NAME}\0SessionType=Discovery\0HeaderDigest=None\0\
         DataDigest=None\0MaxRecvDataSegmentLength=262144\0"
    );
    let LoggedIn {
        mut cmd_sn,
        mut exp_stat_sn,
        mut itt,
        last: mut rsp,
    } = login(&mut s, keys.into_bytes(), &ctx)?;

    // SendTargets=All, following continuation PDUs (F=0) by echoing the TTT.
    itt += 1;
    let mut text = Vec::new();
    let mut ttt = 0xffff_ffffu32;
    let mut data: &[u8] = b"SendTargets=All\0";
    for _ in 0..10_000 {
        let mut bhs = [0u8; 48];
        bhs[0] = 0x40 | 0x04; // immediate, Text Request
        bhs[1] = 0x80; // F=1
        put32(&mut bhs, 16, itt);
        put32(&mut bhs, 20, ttt);
        put32(&mut bhs, 24, cmd_sn);
        put32(&mut bhs, 28, exp_stat_sn);
        send_pdu(&mut s, bhs, data).map_err(io)?;
        rsp = recv_pdu(&mut s).map_err(io)?;
        if rsp.bhs[0] & 0x3f != 0x24 {
            return Err(bad(format!(
                "opcode {:#04x} instead of Text Response",
                rsp.bhs[0]
            )));
        }
        exp_stat_sn = get32(&rsp.bhs, 24).wrapping_add(1);
        text.extend_from_slice(&rsp.data);
        if rsp.bhs[1] & 0x80 != 0 {
            break;
        }
        ttt = get32(&rsp.bhs, 20);
        data = b"";
    }
    // istgt advances ExpCmdSN on the immediate Text PDU; never go below what the target expects.
    let target_exp = get32(&rsp.bhs, 28);
    if target_exp.wrapping_sub(cmd_sn) as i32 > 0 {
        cmd_sn = target_exp;
    }

    // Logout (close session). Its answer is read but not required: some targets just close.
    itt += 1;
    let mut bhs = [0u8; 48];
    bhs[0] = 0x40 | 0x06;
    bhs[1] = 0x80;
    put32(&mut bhs, 16, itt);
    put32(&mut bhs, 24, cmd_sn);
    put32(&mut bhs, 28, exp_stat_sn);
    if send_pdu(&mut s, bhs, b"").is_ok() {
        let _ = recv_pdu(&mut s);
    }

    Ok(parse_sendtargets(&text))
}

/// Where a login left the session.
struct LoggedIn {
    cmd_sn: u32,
    exp_stat_sn: u32,
    itt: u32,
    /// The last Login Response.
    last: Pdu,
}

/// Logs in with `keys` straight into the operational stage (no security stage: no
/// authentication), asking for the full feature phase.
fn login(s: &mut TcpStream, keys: Vec<u8>, ctx: &str) -> Result<LoggedIn, PeerError> {
    let io = |e| PeerError::io(ctx.to_owned(), e);
    let bad = |detail: String| PeerError::Parse {
        command: ctx.to_owned(),
        detail,
    };
    let mut cmd_sn = 1u32;
    let mut exp_stat_sn = 0u32;
    let itt = 1u32;
    let mut login_data = keys;
    let mut stages_left = 4;
    loop {
        let mut bhs = [0u8; 48];
        bhs[0] = 0x40 | 0x03; // immediate, Login Request
        bhs[1] = 0x80 | (1 << 2) | 3; // T=1, CSG=operational, NSG=full feature
        bhs[8..14].copy_from_slice(&[0x80, 0x00, 0x56, 0x44, 0x53, 0x01]); // ISID: random type
        put32(&mut bhs, 16, itt);
        put32(&mut bhs, 24, cmd_sn);
        put32(&mut bhs, 28, exp_stat_sn);
        send_pdu(s, bhs, &login_data).map_err(io)?;
        let rsp = recv_pdu(s).map_err(io)?;
        if rsp.bhs[0] & 0x3f != 0x23 {
            return Err(bad(format!(
                "opcode {:#04x} instead of Login Response",
                rsp.bhs[0]
            )));
        }
        let (class, detail) = (rsp.bhs[36], rsp.bhs[37]);
        if class != 0 {
            return Err(bad(format!(
                "login rejected: status {class:#04x}/{detail:#04x}"
            )));
        }
        exp_stat_sn = get32(&rsp.bhs, 24).wrapping_add(1);
        cmd_sn = get32(&rsp.bhs, 28); // ExpCmdSN
        let transit = rsp.bhs[1] & 0x80 != 0 && rsp.bhs[1] & 0x03 == 3;
        if transit {
            return Ok(LoggedIn {
                cmd_sn,
                exp_stat_sn,
                itt,
                last: rsp,
            });
        }
        stages_left -= 1;
        if stages_left == 0 {
            return Err(bad("target never transited to full feature phase".into()));
        }
        login_data.clear(); // nothing more to say: ask again to transit
    }
}

/// A normal iSCSI session held open: the target lists its initiator as logged in (tgtd shows an
/// I_T nexus) until this is dropped, which closes the connection.
#[derive(Debug)]
pub struct HeldSession {
    stream: TcpStream,
}

impl HeldSession {
    /// Logs in to `target` at `portal` (`ADDR:PORT`) as `initiator` (with `alias`, when given) in a
    /// normal session without authentication, and keeps the connection open. Each socket operation
    /// has `timeout`.
    ///
    /// # Errors
    /// [`PeerError::Io`] for connection problems and timeouts, [`PeerError::Parse`] when the login
    /// is refused (a target without an ACL for us, or one that needs CHAP).
    pub fn open(
        portal: &str,
        target: &str,
        initiator: &str,
        alias: Option<&str>,
        timeout: Duration,
    ) -> Result<HeldSession, PeerError> {
        let addr: SocketAddr = portal.parse().map_err(|_| {
            PeerError::InvalidArgument(format!("portal {portal:?} is not ADDR:PORT"))
        })?;
        let ctx = format!("login to {target} via {portal}");
        let io = |e| PeerError::io(ctx.clone(), e);
        let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        let mut keys = format!("InitiatorName={initiator}\0");
        if let Some(alias) = alias {
            keys.push_str(&format!("InitiatorAlias={alias}\0"));
        }
        keys.push_str(&format!(
            "TargetName={target}\0SessionType=Normal\0HeaderDigest=None\0DataDigest=None\0"
        ));
        login(&mut stream, keys.into_bytes(), &ctx)?;
        Ok(HeldSession { stream })
    }

    /// The local end of the connection.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.stream.local_addr().ok()
    }
}

/// Runs `iscsi-ls -s <url>`: discovery, then a normal-session login to every target to list its
/// LUNs. Succeeds only when every login succeeded (a target that needs CHAP and did not get the
/// right secret fails it: `Authentication failure(513)`). Returns stdout.
///
/// # Errors
/// As [`iscsi_ls`].
pub fn iscsi_ls_luns(url: &str) -> Result<String, PeerError> {
    let bin = process::find_binary("iscsi-ls")?;
    let mut cmd = Command::new(bin);
    cmd.arg("-s").arg(url);
    process::run_ok(&mut cmd, ISCSI_LS_TIMEOUT, None)
}

/// Runs `iscsi-inq <url>` (a normal-session login to the target and LUN the URL names, then
/// INQUIRY): `iscsi://user%secret@host:port/iqn/0?target_user=U&target_password=S` checks mutual
/// CHAP, which libiscsi applies only to this login. Returns stdout.
///
/// # Errors
/// As [`iscsi_ls`] (`Invalid CHAP_R response from the target`, `Wrong CHAP targetname`).
pub fn iscsi_inq(url: &str) -> Result<String, PeerError> {
    let bin = process::find_binary("iscsi-inq")?;
    let mut cmd = Command::new(bin);
    cmd.arg(url);
    process::run_ok(&mut cmd, ISCSI_LS_TIMEOUT, None)
}

fn parse_sendtargets(text: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, bool)> = None;
    for pair in text.split(|b| *b == 0) {
        let pair = String::from_utf8_lossy(pair);
        if let Some(name) = pair.strip_prefix("TargetName=") {
            if let Some((prev, false)) = current.take() {
                out.push((prev, String::new()));
            }
            current = Some((name.to_owned(), false));
        } else if let Some(address) = pair.strip_prefix("TargetAddress=") {
            if let Some((name, seen)) = current.as_mut() {
                out.push((name.clone(), address.to_owned()));
                *seen = true;
            }
        }
    }
    if let Some((prev, false)) = current {
        out.push((prev, String::new()));
    }
    out
}

struct Pdu {
    bhs: [u8; 48],
    data: Vec<u8>,
}

fn put32(bhs: &mut [u8; 48], at: usize, v: u32) {
    bhs[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn get32(bhs: &[u8; 48], at: usize) -> u32 {
    u32::from_be_bytes([bhs[at], bhs[at + 1], bhs[at + 2], bhs[at + 3]])
}

fn send_pdu(s: &mut TcpStream, mut bhs: [u8; 48], data: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(data.len())
        .ok()
        .filter(|l| *l < 1 << 24)
        .ok_or_else(|| std::io::Error::other("data segment too long"))?;
    bhs[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
    let mut buf = bhs.to_vec();
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(4), 0);
    s.write_all(&buf)
}

fn recv_pdu(s: &mut TcpStream) -> std::io::Result<Pdu> {
    let mut bhs = [0u8; 48];
    s.read_exact(&mut bhs)?;
    let ahs = usize::from(bhs[4]) * 4;
    let dsl = usize::from(bhs[5]) << 16 | usize::from(bhs[6]) << 8 | usize::from(bhs[7]);
    let mut rest = vec![0u8; ahs + dsl.next_multiple_of(4)];
    s.read_exact(&mut rest)?;
    let data = rest[ahs..ahs + dsl].to_vec();
    Ok(Pdu { bhs, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iscsi_ls_lines_are_parsed() {
        let out = "Target:iqn.2026-11.test.vds:t3 Portal:127.0.0.1:3260,1\n\
                   Target:iqn.2026-11.test.vds:t2 Portal:[::1]:3260,1\nLun:0    Type:X\n";
        assert_eq!(
            parse_iscsi_ls(out),
            vec![
                (
                    "iqn.2026-11.test.vds:t3".to_owned(),
                    "127.0.0.1:3260,1".to_owned()
                ),
                (
                    "iqn.2026-11.test.vds:t2".to_owned(),
                    "[::1]:3260,1".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn sendtargets_text_is_paired() {
        let text = b"TargetName=a\0TargetAddress=127.0.0.1:1,1\0TargetAddress=[::1]:1,2\0\
                     TargetName=b\0TargetName=c\0TargetAddress=127.0.0.2:1,2\0";
        assert_eq!(
            parse_sendtargets(text),
            vec![
                ("a".to_owned(), "127.0.0.1:1,1".to_owned()),
                ("a".to_owned(), "[::1]:1,2".to_owned()),
                ("b".to_owned(), String::new()),
                ("c".to_owned(), "127.0.0.2:1,2".to_owned()),
            ]
        );
    }

    #[test]
    fn missing_binary_names_the_install_script() {
        let err = require(&["vds-testpeers-no-such-binary"])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("vds-testpeers-no-such-binary not found: run scripts/install-deps.sh")
        );
    }
}
