//! The command line as clap parses it: raw flags and arguments, with no meaning attached yet.
//!
//! Nothing here reads a file or checks a value beyond its syntax; [`crate::args`] turns a [`Cli`]
//! into a validated [`crate::args::Invocation`] in one place (the ripgrep way). The help text,
//! the shell completions and the manual page are all generated from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Administer the vds iSCSI hardware provider (the VDS IVdsSubSystemIscsi object \
model) against real iSCSI arrays, in the spirit of DiskRAID.";

const LONG_ABOUT: &str = "Administer the vds iSCSI hardware provider (the VDS IVdsSubSystemIscsi \
object model) against real iSCSI arrays, in the spirit of DiskRAID.

Register an array with `vdsadm subsystem add`, then query it with `list` and `detail`. Queries read \
the provider cache in the store and never touch the network; `refresh` (IVdsHwProvider::Refresh) and \
`reenumerate` (IVdsHwProvider::Reenumerate) contact the arrays and update the cache. With --sim, \
every command runs against the in-memory simulator instead, and the store is not touched.";

/// `vdsadm`: the raw command line.
#[derive(Debug, Parser)]
#[command(
    name = "vdsadm",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = crate::error::exit_code_help(),
    propagate_version = true
)]
pub struct Cli {
    /// The store directory (configuration, secrets, cache). Default: $VDS_HOME, else the store's
    /// default root.
    #[arg(long, global = true, value_name = "DIR", env = "VDS_HOME")]
    pub store: Option<PathBuf>,

    /// Print one JSON document on stdout (errors too) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// Use the in-memory simulator provider instead of the store and real arrays.
    #[arg(long, global = true)]
    pub sim: bool,

    /// Log what is being contacted to stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The command.
    #[command(subcommand)]
    pub command: CommandArgs,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum CommandArgs {
    /// Register or remove a subsystem (an array reached through SendTargets discovery portals).
    #[command(subcommand)]
    Subsystem(SubsystemArgs),
    /// List objects from the provider cache (no network).
    #[command(subcommand)]
    List(ListArgs),
    /// Show one object in detail from the provider cache (no network).
    #[command(subcommand)]
    Detail(DetailArgs),
    /// IVdsHwProvider::Refresh: contact every registered subsystem and update the cache.
    Refresh,
    /// IVdsHwProvider::Reenumerate: rebuild the set of subsystems from the configuration (and
    /// rebuild a corrupt cache).
    Reenumerate,
    /// One-shot SendTargets discovery against HOST[:PORT]; touches no store.
    Discover(DiscoverArgs),
    /// Print a shell completion script on stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout.
    Man,
}

/// `vdsadm subsystem …`.
#[derive(Debug, Subcommand)]
pub enum SubsystemArgs {
    /// Register a subsystem, then reenumerate and refresh it (unless --no-refresh).
    Add(AddArgs),
    /// Forget a subsystem: its configuration, its secrets and its cached picture.
    Remove {
        /// The subsystem's name.
        name: String,
    },
}

/// The login credentials of discovery sessions, shared by `subsystem add` and `discover`.
#[derive(Debug, Args, Default)]
pub struct CredentialArgs {
    /// The initiator name (IQN) to log in with.
    #[arg(long, value_name = "IQN")]
    pub initiator_name: Option<String>,
    /// CHAP user name (the target authenticates the initiator).
    #[arg(long, value_name = "USER", requires = "chap_secret_file")]
    pub chap_user: Option<String>,
    /// File holding the CHAP secret (one line). The secret is never given on the command line.
    #[arg(long, value_name = "FILE", requires = "chap_user")]
    pub chap_secret_file: Option<PathBuf>,
    /// Mutual CHAP user name (the initiator authenticates the target); needs --chap-user.
    #[arg(long, value_name = "USER", requires = "mutual_secret_file")]
    pub mutual_user: Option<String>,
    /// File holding the mutual CHAP secret (one line).
    #[arg(long, value_name = "FILE", requires = "mutual_user")]
    pub mutual_secret_file: Option<PathBuf>,
}

/// `vdsadm subsystem add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The subsystem's name (its key in the store).
    pub name: String,
    /// A SendTargets discovery portal, HOST[:PORT] (port 3260 by default; IPv6 in brackets:
    /// [::1]:3260). Repeat for several.
    #[arg(long = "portal", value_name = "HOST[:PORT]", required = true)]
    pub portals: Vec<String>,
    /// Credentials.
    #[command(flatten)]
    pub credentials: CredentialArgs,
    /// Only register; do not contact the array now.
    #[arg(long)]
    pub no_refresh: bool,
}

/// `vdsadm list …`.
#[derive(Debug, Subcommand)]
pub enum ListArgs {
    /// The subsystems (IVdsHwProvider::QuerySubSystems).
    Subsystems,
    /// The target portals of a subsystem (QueryPortals, then GetProperties of each), numbered in
    /// QueryPortals order.
    Tportals {
        /// The subsystem.
        #[arg(long, value_name = "NAME")]
        subsystem: String,
    },
    /// The targets of a subsystem (QueryTargets).
    Targets {
        /// The subsystem.
        #[arg(long, value_name = "NAME")]
        subsystem: String,
    },
    /// The portal groups of a target (QueryPortalGroups).
    Tpgroups {
        /// The subsystem.
        #[arg(long, value_name = "NAME")]
        subsystem: String,
        /// The target's iSCSI name.
        #[arg(long, value_name = "IQN")]
        target: String,
    },
}

/// `vdsadm detail …`.
#[derive(Debug, Subcommand)]
pub enum DetailArgs {
    /// A subsystem: its properties, its configuration (secrets only as "set") and its cache.
    Subsystem {
        /// The subsystem.
        name: String,
    },
    /// A target portal and the portal groups that hold it.
    Tportal {
        /// The subsystem.
        #[arg(long, value_name = "NAME")]
        subsystem: String,
        /// The portal's address, HOST:PORT (IPv6 in brackets).
        #[arg(value_name = "HOST:PORT")]
        portal: String,
    },
    /// A target and its portal groups.
    Target {
        /// The subsystem.
        #[arg(long, value_name = "NAME")]
        subsystem: String,
        /// The target's iSCSI name.
        #[arg(value_name = "IQN")]
        target: String,
    },
}

/// `vdsadm discover`.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// The portal to ask, HOST[:PORT] (IPv6 in brackets).
    #[arg(value_name = "HOST[:PORT]")]
    pub portal: String,
    /// Credentials.
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
