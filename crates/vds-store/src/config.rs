//! The configuration: which subsystems are registered, in the human-readable `<root>/vds.toml`.
//!
//! This module owns the file's format (a `version` and one `[[subsystem]]` table per subsystem), the
//! naming rules, and the read-modify-write cycle: an exclusive `flock` on `<root>/vds.toml.lock`
//! serializes writers across processes, and each write replaces the file atomically. Readers take
//! no lock: they see the old file or the new one. A file that does not parse is an error naming the
//! file and line; it is never replaced. Secrets are never written here: `chap_secret` and
//! `mutual_secret` are *names* of files in `secrets/` (see [`crate::secrets`]).
//!
//! ```toml
//! version = 1
//!
//! [[subsystem]]
//! name = "array1"
//! provider = "sendtargets"
//! portals = ["192.0.2.10", "[fe80::10%2]:3260"]
//! chap_user = "initiator"
//! chap_secret = "array1-chap"
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// The format version written into `vds.toml`; a file with a higher one is refused.
pub const CONFIG_VERSION: u32 = 1;

/// The longest subsystem (or provider, or secret) name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// One registered subsystem.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsystemConfig {
    /// The subsystem's name: its natural key in the model and the cache. See [`validate_name`].
    pub name: String,
    /// The provider that manages it, for example `"sendtargets"`.
    pub provider: String,
    /// Its discovery portals, `HOST[:PORT]` as the administrator typed them (IPv6 bracketed).
    #[serde(default)]
    pub portals: Vec<String>,
    /// The initiator name to present, when not the host's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator_name: Option<String>,
    /// The CHAP user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chap_user: Option<String>,
    /// The *name* of the secret (a file in `secrets/`) holding the CHAP secret; never the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chap_secret: Option<String>,
    /// The user name the target presents for mutual CHAP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutual_user: Option<String>,
    /// The *name* of the secret holding the mutual CHAP secret; never the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutual_secret: Option<String>,
}

impl SubsystemConfig {
    /// A subsystem with a name and a provider and nothing else set.
    pub fn new(name: impl Into<String>, provider: impl Into<String>) -> SubsystemConfig {
        SubsystemConfig {
            name: name.into(),
            provider: provider.into(),
            ..SubsystemConfig::default()
        }
    }

    /// Checks every field: the names ([`validate_name`], [`crate::validate_secret_name`]) and that no
    /// text field holds a control character or is empty when present.
    pub fn validate(&self) -> Result<(), StoreError> {
        validate_name("subsystem", &self.name)?;
        validate_name("provider", &self.provider)?;
        for portal in &self.portals {
            check_text("portal", portal)?;
        }
        for (what, v) in [
            ("initiator", &self.initiator_name),
            ("CHAP user", &self.chap_user),
            ("mutual CHAP user", &self.mutual_user),
        ] {
            if let Some(v) = v {
                check_text(what, v)?;
            }
        }
        for v in [&self.chap_secret, &self.mutual_secret]
            .into_iter()
            .flatten()
        {
            crate::validate_secret_name(v)?;
        }
        Ok(())
    }
}

fn check_text(what: &'static str, v: &str) -> Result<(), StoreError> {
    let reason = if v.is_empty() {
        "it is empty"
    } else if v.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidName {
        what,
        name: v.into(),
        reason,
    })
}

/// Every registered subsystem, in the order they were added.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The subsystems; no name twice.
    #[serde(rename = "subsystem", default)]
    pub subsystems: Vec<SubsystemConfig>,
}

impl Config {
    /// The subsystem named `name`.
    pub fn subsystem(&self, name: &str) -> Option<&SubsystemConfig> {
        self.subsystems.iter().find(|s| s.name == name)
    }
}

/// The naming rule for subsystems and providers: 1 to [`MAX_NAME_CHARS`] characters, no control
/// character, no leading or trailing white space. `what` names the kind of name in the error.
pub fn validate_name(what: &'static str, name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.chars().count() > MAX_NAME_CHARS {
        "it is longer than 64 characters"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else if name.trim() != name {
        "it starts or ends with white space"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidName {
        what,
        name: name.into(),
        reason,
    })
}

#[derive(Serialize)]
struct FileOut<'a> {
    version: u32,
    #[serde(rename = "subsystem")]
    subsystems: &'a [SubsystemConfig],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    version: Option<toml::Spanned<u32>>,
    #[serde(default, rename = "subsystem")]
    subsystems: Vec<toml::Spanned<SubsystemConfig>>,
}

const HEADER: &str = "\
# vds: the registered subsystems. Written by vdsadm; safe to read, diff and keep in version control.
# CHAP secrets are not kept here: chap_secret and mutual_secret name files in secrets/.

";

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses and checks the text of `vds.toml` (read from `path`, named in errors).
pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, StoreError> {
    let err = |offset: usize, message: String| StoreError::Config {
        path: path.to_path_buf(),
        line: line_of(text, offset),
        message,
    };
    let file: FileIn = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        err(offset, e.message().trim_end().to_string())
    })?;
    if let Some(v) = &file.version {
        if *v.get_ref() > CONFIG_VERSION || *v.get_ref() == 0 {
            return Err(err(
                v.span().start,
                format!(
                    "format version {} is not supported (this vds reads version {CONFIG_VERSION})",
                    v.get_ref()
                ),
            ));
        }
    }
    let mut subsystems: Vec<SubsystemConfig> = Vec::with_capacity(file.subsystems.len());
    for spanned in file.subsystems {
        let start = spanned.span().start;
        let s = spanned.into_inner();
        s.validate().map_err(|e| err(start, e.to_string()))?;
        if subsystems.iter().any(|o| o.name == s.name) {
            return Err(err(
                start,
                format!("subsystem {:?} is defined twice", s.name),
            ));
        }
        subsystems.push(s);
    }
    Ok(Config { subsystems })
}

/// The text `config` is saved as.
pub(crate) fn render(config: &Config) -> Result<String, StoreError> {
    let body = toml::to_string(&FileOut {
        version: CONFIG_VERSION,
        subsystems: &config.subsystems,
    })
    .map_err(|e| StoreError::InvalidSnapshot {
        reason: format!("cannot render the configuration: {e}"),
    })?;
    Ok(format!("{HEADER}{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config {
            subsystems: vec![
                SubsystemConfig {
                    portals: vec!["192.0.2.10".into(), "[fe80::10%2]:3260".into()],
                    chap_user: Some("me".into()),
                    chap_secret: Some("array1-chap".into()),
                    ..SubsystemConfig::new("array1", "sendtargets")
                },
                SubsystemConfig::new("array 2", "sendtargets"),
            ],
        }
    }

    #[test]
    fn render_parse_round_trip() {
        let text = render(&sample()).unwrap();
        assert!(text.contains("version = 1"), "{text}");
        assert!(text.contains("[[subsystem]]"), "{text}");
        assert!(
            !text.contains("mutual_user"),
            "None fields are left out: {text}"
        );
        assert_eq!(parse(Path::new("vds.toml"), &text).unwrap(), sample());
    }

    #[test]
    fn empty_file_is_empty_config() {
        assert_eq!(parse(Path::new("vds.toml"), "").unwrap(), Config::default());
    }

    #[test]
    fn syntax_error_names_the_line() {
        let text = "version = 1\n\n[[subsystem]]\nname = \"a\"\nprovider = sendtargets\n";
        match parse(Path::new("/r/vds.toml"), text) {
            Err(StoreError::Config { path, line, .. }) => {
                assert_eq!(path, Path::new("/r/vds.toml"));
                assert_eq!(line, 5);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_field_and_duplicate_and_bad_name_name_their_line() {
        let text =
            "version = 1\n[[subsystem]]\nname = \"a\"\nprovider = \"p\"\nchap_secrets = \"x\"\n";
        assert!(matches!(
            parse(Path::new("v"), text),
            Err(StoreError::Config { line: 5, .. })
        ));
        let text = "[[subsystem]]\nname = \"a\"\nprovider = \"p\"\n\n[[subsystem]]\nname = \"a\"\nprovider = \"p\"\n";
        match parse(Path::new("v"), text) {
            Err(StoreError::Config { line, message, .. }) => {
                assert!((5..=6).contains(&line), "{line}");
                assert!(message.contains("twice"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let text = "[[subsystem]]\nname = \"\"\nprovider = \"p\"\n";
        assert!(matches!(
            parse(Path::new("v"), text),
            Err(StoreError::Config { .. })
        ));
    }

    #[test]
    fn newer_version_is_refused() {
        match parse(Path::new("v"), "\nversion = 2\n") {
            Err(StoreError::Config { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("version 2"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names() {
        assert!(validate_name("subsystem", "a").is_ok());
        assert!(validate_name("subsystem", "Array 1/β").is_ok());
        assert!(validate_name("subsystem", &"é".repeat(64)).is_ok());
        for bad in ["", " a", "a ", "a\tb", "a\nb", "a\u{7f}"] {
            assert!(validate_name("subsystem", bad).is_err(), "{bad:?}");
        }
        assert!(validate_name("subsystem", &"é".repeat(65)).is_err());
    }
}
