//! The `tgt` provider kind: one tgtd, reached through its management socket.
//!
//! Setting: `socket` (a path). When the provider is added without one, it is completed with
//! tgtadm's default, `$TGT_IPC_SOCKET.0`, else `/var/run/tgtd/socket.0`, and written into the
//! configuration: every later command talks to the same tgtd whatever its environment. A relative
//! path is made absolute at that moment. The path must fit a Unix socket address (107 bytes).

use std::path::{Path, PathBuf};

use tgt_client::ClientConfig;
use vds_model::{Error, Hresult, ProviderBackend};

use super::TgtBackend;
use crate::{BuildContext, KindInfo, ProviderKind, unknown_setting};

/// The name of the setting that holds the socket path.
pub const SOCKET_SETTING: &str = "socket";

const KNOWN: &[&str] = &[SOCKET_SETTING];

/// The longest socket path: `sockaddr_un.sun_path` holds 108 bytes with the NUL.
const MAX_SOCKET_PATH: usize = 107;

/// The `tgt` kind. See the module documentation.
#[derive(Debug)]
pub struct TgtKind;

fn invalid(why: impl Into<String>) -> Error {
    Error::new(Hresult::E_INVALIDARG).because(why)
}

/// The socket path of `settings`, checked; `None` when not set.
fn socket(settings: &toml::Table) -> Result<Option<PathBuf>, Error> {
    match settings.get(SOCKET_SETTING) {
        None => Ok(None),
        Some(toml::Value::String(s)) => {
            check_path(Path::new(s))?;
            Ok(Some(PathBuf::from(s)))
        }
        Some(v) => Err(invalid(format!(
            "setting \"{SOCKET_SETTING}\" is {v}; it is the path of tgtd's management socket"
        ))),
    }
}

fn check_path(p: &Path) -> Result<(), Error> {
    let shown = p.display();
    let len = p.as_os_str().len();
    if len == 0 {
        return Err(invalid(format!("setting \"{SOCKET_SETTING}\" is empty")));
    }
    if len > MAX_SOCKET_PATH {
        return Err(invalid(format!(
            "socket path {shown:?} has {len} bytes; a Unix socket path has at most \
             {MAX_SOCKET_PATH}"
        )));
    }
    if p.to_str().is_none_or(|s| s.chars().any(char::is_control)) {
        return Err(invalid(format!(
            "socket path {shown:?} is not UTF-8 text without control characters"
        )));
    }
    Ok(())
}

impl ProviderKind for TgtKind {
    fn info(&self) -> KindInfo {
        KindInfo {
            name: "tgt",
            description: "one tgtd (Linux SCSI target framework) managed through its management \
                          socket: portals, targets, CHAP",
            manages_arrays: true,
            takes_registrations: false,
        }
    }

    fn check_settings(&self, settings: &toml::Table) -> Result<(), Error> {
        for key in settings.keys() {
            if !KNOWN.contains(&key.as_str()) {
                return Err(unknown_setting("tgt", key, KNOWN));
            }
        }
        socket(settings).map(drop)
    }

    fn complete_settings(&self, settings: &toml::Table) -> Result<toml::Table, Error> {
        self.check_settings(settings)?;
        let path = match socket(settings)? {
            Some(p) => p,
            None => tgt_client::default_socket_path(),
        };
        let path = std::path::absolute(&path)
            .map_err(|e| invalid(format!("socket path {:?}: {e}", path.display())))?;
        check_path(&path)?;
        let text = path
            .to_str()
            .ok_or_else(|| invalid(format!("socket path {:?} is not UTF-8", path.display())))?;
        let mut out = settings.clone();
        out.insert(SOCKET_SETTING.into(), toml::Value::String(text.to_string()));
        Ok(out)
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn ProviderBackend>, Error> {
        self.check_settings(ctx.settings)?;
        // A configuration written by hand may leave it out: tgtadm's default then.
        let path = socket(ctx.settings)?.unwrap_or_else(tgt_client::default_socket_path);
        Ok(Box::new(TgtBackend::new(
            ctx.name,
            ClientConfig::new(path),
            ctx.state,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(socket: toml::Value) -> toml::Table {
        let mut t = toml::Table::new();
        t.insert(SOCKET_SETTING.into(), socket);
        t
    }

    #[test]
    fn settings_are_checked_and_completed() {
        let ok = table(toml::Value::String("/tmp/x/ipc.7".into()));
        TgtKind.check_settings(&ok).unwrap();
        assert_eq!(TgtKind.complete_settings(&ok).unwrap(), ok);
        let relative = table(toml::Value::String("ipc.7".into()));
        let done = TgtKind.complete_settings(&relative).unwrap();
        let p = done[SOCKET_SETTING].as_str().unwrap().to_string();
        assert!(p.starts_with('/') && p.ends_with("/ipc.7"), "{p}");
        let completed = TgtKind.complete_settings(&toml::Table::new()).unwrap();
        assert!(completed[SOCKET_SETTING].as_str().unwrap().ends_with(".0"));
        for bad in [
            table(toml::Value::Integer(3)),
            table(toml::Value::String(String::new())),
            table(toml::Value::String(format!("/{}", "x".repeat(120)))),
            table(toml::Value::String("/tmp/a\nb".into())),
        ] {
            assert_eq!(
                TgtKind.check_settings(&bad).unwrap_err(),
                Hresult::E_INVALIDARG
            );
        }
        let mut unknown = toml::Table::new();
        unknown.insert("portals".into(), toml::Value::Integer(1));
        let e = TgtKind.check_settings(&unknown).unwrap_err();
        assert!(e.to_string().contains("socket"), "{e}");
    }
}
