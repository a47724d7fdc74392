//! The configuration: which providers exist and which subsystems are registered with them, in the
//! human-readable `<root>/vds.toml`.
//!
//! This module owns the file's format (a `version`, one `[[provider]]` table per provider instance
//! and one `[[subsystem]]` table per registered subsystem), the naming rules, and the
//! read-modify-write cycle: an exclusive `flock` on `<root>/vds.toml.lock` serializes writers across
//! processes, and each write replaces the file atomically. Readers take no lock: they see the old
//! file or the new one. A file that does not parse is an error naming the file and line; it is never
//! replaced. Secrets are never written here: `chap_secret` and `mutual_secret` are *names* of files
//! in `secrets/` (see [`crate::secrets`]).
//!
//! ```toml
//! version = 2
//!
//! [[provider]]
//! name = "vds-sendtargets"
//! kind = "sendtargets"
//!
//! [[provider]]
//! name = "tgt1"
//! kind = "tgt"
//! socket = "/run/tgtd/socket.0"     # kind-specific settings sit beside name and kind
//!
//! [[subsystem]]
//! name = "array1"
//! provider = "vds-sendtargets"
//! portals = ["192.0.2.10", "[fe80::10%2]:3260"]
//! chap_user = "initiator"
//! chap_secret = "array1.chap"
//! ```
//!
//! # Version 1
//!
//! Version 1 (vds 0.1) had no `[[provider]]` tables: every subsystem named the provider *kind*
//! `"sendtargets"`, and the one SendTargets provider was called `vds-sendtargets`. A version 1 file
//! is read as the version 2 configuration it means (one provider `vds-sendtargets` of kind
//! `sendtargets` holding every subsystem), so object ids stay the same; the first write saves it as
//! version 2 after keeping the original aside as `vds.toml.v1` (see [`crate::Store::update_config`]).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// The format version written into `vds.toml`; a file with a higher one is refused.
pub const CONFIG_VERSION: u32 = 2;

/// The name version 1 gave its one SendTargets provider (from which every object id of its
/// subsystems is derived); a version 1 file is read as a provider of this name.
pub const V1_PROVIDER_NAME: &str = "vds-sendtargets";

/// The provider kind every version 1 subsystem named.
pub const V1_PROVIDER_KIND: &str = "sendtargets";

/// The longest subsystem (or provider, or secret) name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// One provider instance: a name (from which its id, and so every object id under it, is derived),
/// a kind (`sendtargets`, `sim`, `tgt`, `isns`, …) and the kind's own settings, which the kind checks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderConfig {
    /// The provider's name. See [`validate_name`].
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Every other key of its `[[provider]]` table, for the kind to interpret.
    #[serde(flatten)]
    pub settings: toml::Table,
}

impl ProviderConfig {
    /// A provider with a name and a kind and no settings.
    pub fn new(name: impl Into<String>, kind: impl Into<String>) -> ProviderConfig {
        ProviderConfig {
            name: name.into(),
            kind: kind.into(),
            settings: toml::Table::new(),
        }
    }

    /// Checks the name and the kind (a plain word: `[a-z0-9-]`).
    pub fn validate(&self) -> Result<(), StoreError> {
        validate_name("provider", &self.name)?;
        if self.kind.is_empty()
            || !self
                .kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(StoreError::InvalidName {
                what: "provider kind",
                name: self.kind.clone(),
                reason: "a kind is a word of lower-case letters, digits and '-'",
            });
        }
        Ok(())
    }
}

/// One registered subsystem.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsystemConfig {
    /// The subsystem's name: its natural key in the model and the cache. See [`validate_name`].
    pub name: String,
    /// The provider (instance) that manages it, by name.
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
        for (user, secret, u, s) in [
            (
                &self.chap_user,
                &self.chap_secret,
                "chap_user",
                "chap_secret",
            ),
            (
                &self.mutual_user,
                &self.mutual_secret,
                "mutual_user",
                "mutual_secret",
            ),
        ] {
            let (present, missing) = match (user.is_some(), secret.is_some()) {
                (true, false) => (u, s),
                (false, true) => (s, u),
                _ => continue,
            };
            return Err(StoreError::HalfCredential {
                subsystem: self.name.clone(),
                present,
                missing,
            });
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

/// Every provider and every registered subsystem, in the order they were added.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// The providers; no name twice.
    pub providers: Vec<ProviderConfig>,
    /// The subsystems; no (provider, name) twice, and every provider named exists.
    pub subsystems: Vec<SubsystemConfig>,
    /// The version the file had when read (0 when there was no file); [`CONFIG_VERSION`] once saved.
    pub read_version: u32,
}

impl Config {
    /// The provider named `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The subsystem named `name` of provider `provider`.
    pub fn subsystem(&self, provider: &str, name: &str) -> Option<&SubsystemConfig> {
        self.subsystems
            .iter()
            .find(|s| s.provider == provider && s.name == name)
    }

    /// Where subsystem `name` of provider `provider` is in [`subsystems`](Self::subsystems);
    /// `NotFound` naming the subsystem when it is not registered.
    pub fn position(&self, provider: &str, name: &str) -> Result<usize, StoreError> {
        self.subsystems
            .iter()
            .position(|s| s.provider == provider && s.name == name)
            .ok_or_else(|| StoreError::NotFound {
                what: "subsystem",
                name: name.into(),
            })
    }

    /// The registered subsystems whose provider is not defined.
    pub fn orphans(&self) -> impl Iterator<Item = &SubsystemConfig> + '_ {
        self.subsystems
            .iter()
            .filter(|s| self.provider(&s.provider).is_none())
    }

    /// The subsystems registered with provider `provider`, in order.
    pub fn subsystems_of<'a>(
        &'a self,
        provider: &'a str,
    ) -> impl Iterator<Item = &'a SubsystemConfig> + 'a {
        self.subsystems
            .iter()
            .filter(move |s| s.provider == provider)
    }

    /// Checks the rules that involve more than one entry: names unique, no secret file named by two
    /// subsystems. A subsystem may name a provider that is not defined (a hand edit): it is reported
    /// as failed where it is used ([`orphans`](Self::orphans)), and the others keep working.
    pub fn validate(&self) -> Result<(), StoreError> {
        for (i, p) in self.providers.iter().enumerate() {
            p.validate()?;
            if self.providers[..i].iter().any(|o| o.name == p.name) {
                return Err(StoreError::NameExists {
                    what: "provider",
                    name: p.name.clone(),
                });
            }
        }
        let mut secrets: HashMap<&str, &str> = HashMap::new();
        let mut names: HashSet<(&str, &str)> = HashSet::with_capacity(self.subsystems.len());
        for s in &self.subsystems {
            s.validate()?;
            if !names.insert((s.provider.as_str(), s.name.as_str())) {
                return Err(StoreError::NameExists {
                    what: "subsystem",
                    name: s.name.clone(),
                });
            }
            for secret in [&s.chap_secret, &s.mutual_secret].into_iter().flatten() {
                if let Some(other) = secrets.insert(secret.as_str(), s.name.as_str()) {
                    return Err(StoreError::SecretShared {
                        secret: secret.clone(),
                        first: other.to_string(),
                        second: s.name.clone(),
                    });
                }
            }
        }
        Ok(())
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
    #[serde(rename = "provider")]
    providers: &'a [ProviderConfig],
    #[serde(rename = "subsystem")]
    subsystems: &'a [SubsystemConfig],
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct FileIn {
    version: Option<toml::Spanned<u32>>,
    #[serde(default, rename = "provider")]
    providers: Vec<toml::Spanned<ProviderConfig>>,
    #[serde(default, rename = "subsystem")]
    subsystems: Vec<toml::Spanned<SubsystemConfig>>,
}

/// One piece of `vds.toml` read alone: the text before the first `[[table]]` header, or one such
/// table with the sub-tables that follow it. Unlike [`FileIn`], it tells a key left out from an
/// empty array.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PieceIn {
    version: Option<toml::Spanned<u32>>,
    #[serde(rename = "provider")]
    providers: Option<Vec<toml::Spanned<ProviderConfig>>>,
    #[serde(rename = "subsystem")]
    subsystems: Option<Vec<toml::Spanned<SubsystemConfig>>>,
}

/// Reads `vds.toml`'s text: piece by piece when that is sure to mean what the whole does, else
/// (and for the error of a file that does not parse) as one document.
///
/// A TOML parser holds the whole document as a tree of tables before any of it is deserialized:
/// about 3 KB per subsystem, 14 MB for a fleet's 5,000, the peak of a whole refresh's memory. Read
/// piece by piece, only one table's tree exists at a time.
fn read_file(text: &str) -> Result<FileIn, toml::de::Error> {
    match read_in_pieces(text) {
        Some(file) => Ok(file),
        None => toml::from_str(text),
    }
}

/// The file read as pieces split where a line starts with `[[` (see [`PieceIn`]), or `None` when
/// a piece does not parse or the pieces could mean something else together.
///
/// Why the pieces, when each parses, mean what the whole document means: each piece after the
/// first starts with an array-of-tables header, so it holds one element of that array with its own
/// sub-tables and no key of the top-level table; and [`PieceIn`] refuses every top-level key but
/// the three. A line starting with `[[` inside a multi-line string or array is not a header; the
/// split there leaves the piece before it unterminated, which does not parse. What is left is the
/// first piece giving `provider` or `subsystem` as a key (`subsystem = [...]`), which another
/// `[[subsystem]]` may not extend: then the whole document is read, and it says so.
fn read_in_pieces(text: &str) -> Option<FileIn> {
    let starts = array_table_starts(text);
    let first_end = starts.first().copied().unwrap_or(text.len());
    let first: PieceIn = toml::from_str(&text[..first_end]).ok()?;
    if !starts.is_empty() && (first.providers.is_some() || first.subsystems.is_some()) {
        return None;
    }
    let mut file = FileIn {
        version: first.version,
        providers: first.providers.unwrap_or_default(),
        subsystems: first.subsystems.unwrap_or_default(),
    };
    file.subsystems.reserve(starts.len());
    let ends = starts.iter().skip(1).copied().chain([text.len()]);
    for (&start, end) in starts.iter().zip(ends) {
        let piece: PieceIn = toml::from_str(&text[start..end]).ok()?;
        if piece.version.is_some() {
            return None;
        }
        let providers = piece.providers.into_iter().flatten();
        file.providers.extend(providers.map(|p| shifted(p, start)));
        let subsystems = piece.subsystems.into_iter().flatten();
        file.subsystems
            .extend(subsystems.map(|s| shifted(s, start)));
    }
    Some(file)
}

/// Where each line of `text` that starts with `[[` (after spaces or tabs) starts.
fn array_table_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut line = 0;
    loop {
        if text[line..]
            .trim_start_matches([' ', '\t'])
            .starts_with("[[")
        {
            starts.push(line);
        }
        match next_newline(&text.as_bytes()[line..]) {
            Some(i) => line += i + 1,
            None => return starts,
        }
    }
}

/// Where the first `\n` of `hay` is. On x86_64 with memchr's SSE2 searcher, which needs no CPU
/// feature detection (SSE2 is part of x86_64): `memchr::memchr` asks the CPU for AVX2 on its first
/// call, nine `CPUID`s that are each a VM exit under a hypervisor (docs/PERFORMANCE.md).
fn next_newline(hay: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(one) = memchr::arch::x86_64::sse2::memchr::One::new(b'\n') {
        return one.find(hay);
    }
    memchr::memchr(b'\n', hay)
}

/// `s` with its span moved on by `by` bytes (from a piece's start to the file's).
fn shifted<T>(s: toml::Spanned<T>, by: usize) -> toml::Spanned<T> {
    let span = s.span();
    toml::Spanned::new(span.start + by..span.end + by, s.into_inner())
}

const HEADER: &str = "\
# vds: the providers and the registered subsystems. Written by vdsadm; safe to read, diff and keep
# in version control. CHAP secrets are not kept here: chap_secret and mutual_secret name files in
# secrets/.

";

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses and checks the text of `vds.toml` (read from `path`, named in errors). A version 1 file
/// is read as the version 2 configuration it means (see the module documentation).
pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, StoreError> {
    let err = |offset: usize, message: String| StoreError::Config {
        path: path.to_path_buf(),
        line: line_of(text, offset),
        message,
    };
    let file = read_file(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        err(offset, e.message().trim_end().to_string())
    })?;
    let version = match &file.version {
        Some(v) => {
            if *v.get_ref() > CONFIG_VERSION || *v.get_ref() == 0 {
                return Err(err(
                    v.span().start,
                    format!(
                        "format version {} is not supported (this vds reads versions 1 to \
                         {CONFIG_VERSION})",
                        v.get_ref()
                    ),
                ));
            }
            *v.get_ref()
        }
        // A file without a version (written by hand) is read as the current format, unless it
        // has the shape of version 1 (subsystems and no providers).
        None if file.providers.is_empty() && !file.subsystems.is_empty() => 1,
        None => CONFIG_VERSION,
    };
    let mut config = Config {
        read_version: version,
        subsystems: Vec::with_capacity(file.subsystems.len()),
        ..Config::default()
    };
    if version == 1 {
        if let Some(p) = file.providers.first() {
            return Err(err(
                p.span().start,
                "a version 1 file has no [[provider]] tables; set `version = 2`".to_string(),
            ));
        }
    }
    for spanned in file.providers {
        let start = spanned.span().start;
        let p = spanned.into_inner();
        p.validate().map_err(|e| err(start, e.to_string()))?;
        if config.provider(&p.name).is_some() {
            return Err(err(
                start,
                format!("provider {:?} is defined twice", p.name),
            ));
        }
        config.providers.push(p);
    }
    // What the subsystems seen so far use, so that each check below is a lookup, not a scan of
    // every subsystem before (a fleet's file has thousands): the hash of each (provider, name),
    // confirmed by a scan only when it matches, and each secret's first user.
    let mut names: HashSet<u64> = HashSet::with_capacity(file.subsystems.len());
    let mut secrets: HashMap<String, usize> = HashMap::new();
    for spanned in file.subsystems {
        let start = spanned.span().start;
        let mut s = spanned.into_inner();
        if version == 1 {
            if s.provider != V1_PROVIDER_KIND {
                return Err(err(
                    start,
                    format!(
                        "subsystem {:?}: version 1 knows only provider {V1_PROVIDER_KIND:?}, not {:?}",
                        s.name, s.provider
                    ),
                ));
            }
            s.provider = V1_PROVIDER_NAME.to_string();
            if config.provider(V1_PROVIDER_NAME).is_none() {
                config
                    .providers
                    .push(ProviderConfig::new(V1_PROVIDER_NAME, V1_PROVIDER_KIND));
            }
        }
        s.validate().map_err(|e| err(start, e.to_string()))?;
        let named = {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            BuildHasherDefault::<DefaultHasher>::default().hash_one((&s.provider, &s.name))
        };
        if !names.insert(named) && config.subsystem(&s.provider, &s.name).is_some() {
            return Err(err(
                start,
                format!(
                    "subsystem {:?} of provider {:?} is defined twice",
                    s.name, s.provider
                ),
            ));
        }
        for secret in [&s.chap_secret, &s.mutual_secret].into_iter().flatten() {
            let other = secrets.get(secret).map(|&i| &config.subsystems[i]);
            let twice = s.chap_secret.is_some() && s.chap_secret == s.mutual_secret;
            if other.is_some() || twice {
                let first = other.map_or(s.name.as_str(), |o| o.name.as_str());
                return Err(err(
                    start,
                    StoreError::SecretShared {
                        secret: secret.clone(),
                        first: first.to_string(),
                        second: s.name.clone(),
                    }
                    .to_string(),
                ));
            }
        }
        for secret in [&s.chap_secret, &s.mutual_secret].into_iter().flatten() {
            secrets
                .entry(secret.clone())
                .or_insert(config.subsystems.len());
        }
        config.subsystems.push(s);
    }
    Ok(config)
}

/// The text `config` is saved as.
pub(crate) fn render(config: &Config) -> Result<String, StoreError> {
    let body = toml::to_string(&FileOut {
        version: CONFIG_VERSION,
        providers: &config.providers,
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
        let mut tgt = ProviderConfig::new("tgt1", "tgt");
        tgt.settings
            .insert("socket".into(), toml::Value::String("/run/x.0".into()));
        Config {
            providers: vec![ProviderConfig::new(V1_PROVIDER_NAME, V1_PROVIDER_KIND), tgt],
            subsystems: vec![
                SubsystemConfig {
                    portals: vec!["192.0.2.10".into(), "[fe80::10%2]:3260".into()],
                    chap_user: Some("me".into()),
                    chap_secret: Some("array1-chap".into()),
                    ..SubsystemConfig::new("array1", V1_PROVIDER_NAME)
                },
                SubsystemConfig::new("array 2", V1_PROVIDER_NAME),
            ],
            read_version: CONFIG_VERSION,
        }
    }

    #[test]
    fn render_parse_round_trip() {
        let text = render(&sample()).unwrap();
        assert!(text.contains("version = 2"), "{text}");
        assert!(text.contains("[[provider]]"), "{text}");
        assert!(text.contains("[[subsystem]]"), "{text}");
        assert!(text.contains("socket = \"/run/x.0\""), "{text}");
        assert!(
            !text.contains("mutual_user"),
            "None fields are left out: {text}"
        );
        assert_eq!(parse(Path::new("vds.toml"), &text).unwrap(), sample());
    }

    #[test]
    fn array_tables_are_found_at_line_starts_only() {
        assert_eq!(array_table_starts(""), Vec::<usize>::new());
        assert_eq!(array_table_starts("[[a]]"), [0]);
        assert_eq!(array_table_starts("x = 1\n[[a]]"), [6]);
        assert_eq!(array_table_starts("x = 1\n[[a]]\n"), [6]);
        assert_eq!(
            array_table_starts("[[a]]\n \t[[b]]\ny = \"[[c]]\"\n[d]\n"),
            [0, 6]
        );
        assert_eq!(array_table_starts("x = 1\r\n[[a]]\r\n"), [7]);
        assert_eq!(array_table_starts("\n\n[[a]]"), [2]);
    }

    #[test]
    fn read_in_pieces_as_the_whole_document_reads() {
        let whole = |text: &str| toml::from_str::<FileIn>(text).map_err(|e| e.to_string());
        let head = "version = 2\n[[provider]]\nname = \"p\"\nkind = \"sim\"\n";
        let fleet: String = (0..50)
            .map(|i| {
                format!(
                    "\n[[subsystem]]\nname = \"s{i}\"\nprovider = \"p\"\nportals = [\"127.0.0.1:{}\"]\n",
                    3260 + i
                )
            })
            .collect();
        let fleet =
            format!("{head}{fleet}  [[subsystem]] # indented\nname = \"last\"\nprovider = \"p\"\n");
        // A file as vdsadm writes it is read in pieces, each table's span where the whole
        // document has it (errors name lines from these spans).
        let pieces = read_in_pieces(&fleet).expect("read in pieces");
        let all = toml::from_str::<FileIn>(&fleet).unwrap();
        assert_eq!(pieces, all);
        assert_eq!(pieces.subsystems.len(), 51);
        let spans = |f: &FileIn| f.subsystems.iter().map(|s| s.span()).collect::<Vec<_>>();
        assert_eq!(spans(&pieces), spans(&all));
        // Files whose pieces could mean something else are read whole, with the same answer.
        for text in [
            // A line starting with `[[` inside a multi-line string, and inside an array.
            format!("{head}note = \"\"\"\n[[subsystem]]\nname = \"x\"\n\"\"\"\n"),
            format!("{head}matrix = [\n[[1]],\n]\n"),
            // An array of subsystems given inline, then extended by a table: an error.
            "subsystem = [{ name = \"a\", provider = \"p\" }]\n[[subsystem]]\nname = \"b\"\n\
             provider = \"p\"\n"
                .to_string(),
            // A sub-table of the last provider, after a subsystem.
            format!(
                "{head}[[subsystem]]\nname = \"a\"\nprovider = \"p\"\n[provider.extra]\nx = 1\n"
            ),
        ] {
            assert!(read_in_pieces(&text).is_none(), "{text}");
            assert_eq!(
                read_file(&text).map_err(|e| e.to_string()),
                whole(&text),
                "{text}"
            );
        }
        assert!(whole("subsystem = [{ name = \"a\" }]\n[[subsystem]]\nname = \"b\"\n").is_err());
    }

    #[test]
    fn version_1_is_read_as_the_sendtargets_provider() {
        let text = "version = 1\n\n[[subsystem]]\nname = \"lab\"\nprovider = \"sendtargets\"\n\
                    portals = [\"127.0.0.1\"]\n";
        let c = parse(Path::new("v"), text).unwrap();
        assert_eq!(c.read_version, 1);
        assert_eq!(
            c.providers,
            [ProviderConfig::new(V1_PROVIDER_NAME, V1_PROVIDER_KIND)]
        );
        assert_eq!(c.subsystems[0].provider, V1_PROVIDER_NAME);
        assert!(c.subsystem(V1_PROVIDER_NAME, "lab").is_some());
        // A version 1 file with another provider kind is refused with its line.
        let text = "version = 1\n[[subsystem]]\nname = \"a\"\nprovider = \"tgt\"\n";
        assert!(matches!(
            parse(Path::new("v"), text),
            Err(StoreError::Config { line: 2, .. })
        ));
    }

    #[test]
    fn empty_file_is_empty_config() {
        let c = parse(Path::new("vds.toml"), "").unwrap();
        assert!(c.providers.is_empty() && c.subsystems.is_empty());
    }

    #[test]
    fn syntax_error_names_the_line() {
        let text = "version = 2\n\n[[subsystem]]\nname = \"a\"\nprovider = sendtargets\n";
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
        let head = "version = 2\n[[provider]]\nname = \"p\"\nkind = \"sim\"\n";
        let text =
            format!("{head}[[subsystem]]\nname = \"a\"\nprovider = \"p\"\nchap_secrets = \"x\"\n");
        assert!(matches!(
            parse(Path::new("v"), &text),
            Err(StoreError::Config { line: 8, .. })
        ));
        let text = format!(
            "{head}[[subsystem]]\nname = \"a\"\nprovider = \"p\"\n\n[[subsystem]]\nname = \"a\"\n\
             provider = \"p\"\n"
        );
        match parse(Path::new("v"), &text) {
            Err(StoreError::Config { line, message, .. }) => {
                assert!((9..=10).contains(&line), "{line}");
                assert!(message.contains("twice"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let text = format!("{head}[[subsystem]]\nname = \"\"\nprovider = \"p\"\n");
        assert!(matches!(
            parse(Path::new("v"), &text),
            Err(StoreError::Config { .. })
        ));
        // A subsystem of a provider that is not defined is read, and named as an orphan.
        let text = format!("{head}[[subsystem]]\nname = \"a\"\nprovider = \"q\"\n");
        let c = parse(Path::new("v"), &text).unwrap();
        assert_eq!(
            c.orphans().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        // Half a credential is refused with its line.
        let text =
            format!("{head}[[subsystem]]\nname = \"a\"\nprovider = \"p\"\nchap_user = \"u\"\n");
        match parse(Path::new("v"), &text) {
            Err(StoreError::Config { line, message, .. }) => {
                assert_eq!(line, 5);
                assert!(message.contains("chap_secret"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_subsystems_naming_one_secret_file_are_refused() {
        let text = "version = 2\n[[provider]]\nname = \"p\"\nkind = \"sendtargets\"\n\
                    [[subsystem]]\nname = \"a\"\nprovider = \"p\"\nchap_user = \"u\"\nchap_secret = \"s\"\n\
                    [[subsystem]]\nname = \"b\"\nprovider = \"p\"\nchap_user = \"u\"\nchap_secret = \"s\"\n";
        match parse(Path::new("v"), text) {
            Err(StoreError::Config { line, message, .. }) => {
                assert_eq!(line, 10);
                assert!(message.contains("\"s\""), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn newer_version_is_refused() {
        match parse(Path::new("v"), "\nversion = 3\n") {
            Err(StoreError::Config { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("version 3"), "{message}");
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
        assert!(ProviderConfig::new("p", "Tgt").validate().is_err());
        assert!(ProviderConfig::new("p", "tgt").validate().is_ok());
    }
}
