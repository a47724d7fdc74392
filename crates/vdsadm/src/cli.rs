//! The command line as clap parses it: raw flags and arguments, with no meaning attached yet.
//!
//! Nothing here reads a file or checks a value beyond its syntax; [`crate::args`] turns a [`Cli`]
//! into a validated [`crate::args::Invocation`] in one place (the ripgrep way). The help text,
//! the shell completions and the manual pages are all generated from these definitions.

use std::cell::Cell;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, CommandFactory, FromArgMatches, Parser, Subcommand};

const ABOUT: &str = "Administer the vds iSCSI hardware providers (the VDS IVdsSubSystemIscsi object \
model) against real iSCSI arrays, in the spirit of DiskRAID.";

const LONG_ABOUT: &str = "Administer the vds iSCSI hardware providers (the VDS IVdsSubSystemIscsi \
object model) against real iSCSI arrays, in the spirit of DiskRAID.

Register an array with `vdsadm subsystem add` (or add a provider that finds its own arrays with \
`vdsadm provider add`), then query it with `list` and `detail`. Queries read the provider cache in \
the store and never touch the network; `refresh` (IVdsHwProvider::Refresh), `reenumerate` \
(IVdsHwProvider::Reenumerate) and the change verbs (`online`, `offline`, `create`, `delete`, \
`name`, `add`, `remove`, `chap`) contact the arrays and update the cache. With --sim, every command runs \
against a throwaway store holding the simulator.";

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
    /// The options every command takes ([`Common`]).
    #[command(flatten)]
    pub common: Common,

    /// The command.
    #[command(subcommand)]
    pub command: CommandArgs,
}

// The options every command takes, before or after the command's name (`vdsadm --json list
// tportals` and `vdsadm list tportals --json` mean the same).
//
// They are not clap `global` options. clap copies a global option into each subcommand of a
// command whenever it builds that command, so every run paid for copying these five into all 18
// top-level commands and back out of each level (three quarters of clap's work in
// `vdsadm discover`: 257k of 339k instructions, and 100 KB of heap, docs/PERFORMANCE.md). Here each command gets its own definitions when it is built, and a
// run builds only the commands it names ([`Lazy`]); [`Common::given`] then takes each option from
// the deepest command it was given to, as clap did for global ones. The display order is the
// one clap gave the global options, so the help reads as before. (No doc comment: a derived
// `Args` type's doc comment would become the help text of each command it is added to.)
#[derive(Debug, Args, Default)]
pub struct Common {
    /// The store directory (configuration, secrets, cache). Default: $VDS_HOME when set and not
    /// empty, else /var/lib/vds for root and $XDG_STATE_HOME/vds (~/.local/state/vds) for others.
    #[arg(long, value_name = "DIR", display_order = 0)]
    pub store: Option<PathBuf>,

    /// The provider, where two providers have a subsystem of the same name (and to restrict
    /// `list subsystems`, `refresh` and `reenumerate` to one provider).
    #[arg(long, value_name = "NAME", display_order = 1)]
    pub provider: Option<String>,

    /// Print one JSON document on stdout (errors too) instead of tables (`--json=true` and
    /// `--json=false` are accepted too).
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        value_parser = clap::builder::BoolishValueParser::new(),
        display_order = 2
    )]
    pub json: bool,

    /// Use a throwaway store holding the simulator (provider "vds-sim") instead of the store.
    #[arg(long, display_order = 3)]
    pub sim: bool,

    /// Log what is being contacted to stderr, and list the notifications a change raised (-v
    /// info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, display_order = 4)]
    pub verbose: u8,
}

impl Common {
    /// The option ids, as clap knows them.
    const IDS: [&'static str; 5] = ["store", "provider", "json", "sim", "verbose"];

    /// The options as given: each from the deepest command it was given to (typed after that
    /// command's name), else from the command line's start, else its default.
    pub fn given(matches: &ArgMatches) -> Result<Common, clap::Error> {
        let mut out = Common::from_arg_matches(matches)?;
        let mut level = matches;
        while let Some((_, sub)) = level.subcommand() {
            level = sub;
            let given = |id: &str| level.value_source(id) == Some(ValueSource::CommandLine);
            if !Common::IDS.iter().any(|id| given(id)) {
                continue;
            }
            let here = Common::from_arg_matches(level)?;
            if given("store") {
                out.store = here.store;
            }
            if given("provider") {
                out.provider = here.provider;
            }
            if given("json") {
                out.json = here.json;
            }
            if given("sim") {
                out.sim = here.sim;
            }
            if given("verbose") {
                out.verbose = here.verbose;
            }
        }
        Ok(out)
    }
}

/// The command line `args` (the program's name first), parsed. The parser is not dropped: the
/// process ends soon after, and freeing its definitions one by one would cost a short command
/// more than building them did.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = Cli::command();
    let parsed = cmd.try_get_matches_from_mut(args).and_then(|mut matches| {
        Common::given(&matches)
            .and_then(|common| {
                let mut cli = Cli::from_arg_matches_mut(&mut matches)?;
                cli.common = common;
                Ok(cli)
            })
            .map_err(|e| e.format(&mut cmd))
    });
    std::mem::forget(cmd);
    parsed
}

/// `cmd` with the [`Common`] options, and every command under it too: at once when the whole
/// definition is made ([`full_command`]), else each when clap builds it, so a run defines them only
/// for the commands it names (`vdsadm list tportals` builds `list`'s five commands, not their
/// options). The deferral replaces a command's own ([`Command::defer`]), so [`Lazy`] is for
/// top-level commands only.
fn with_common(cmd: Command) -> Command {
    let eager = EAGER.with(Cell::get);
    Common::augment_args(cmd).mut_subcommands(|c| {
        if eager {
            with_common(c)
        } else {
            c.defer(with_common)
        }
    })
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum CommandArgs {
    /// Register or remove a subsystem (an array reached through SendTargets discovery portals).
    #[command(subcommand)]
    Subsystem(Lazy<SubsystemArgs>),
    /// Add or remove a provider (an instance of a provider kind: sendtargets, sim, tgt, isns).
    #[command(subcommand)]
    Provider(Lazy<ProviderArgs>),
    /// List objects from the provider cache (no network).
    #[command(subcommand)]
    List(Lazy<ListArgs>),
    /// Show one object in detail from the provider cache (no network).
    #[command(subcommand)]
    Detail(Lazy<DetailArgs>),
    /// IVdsHwProvider::Refresh: contact the arrays and update the cache (every subsystem, those of
    /// --provider, or one).
    Refresh(Lazy<RefreshArgs>),
    /// IVdsHwProvider::Reenumerate: rebuild the set of subsystems (and a corrupt cache).
    Reenumerate(Lazy<NoArgs>),
    /// One-shot SendTargets discovery against HOST[:PORT]; touches no store.
    Discover(Lazy<DiscoverArgs>),
    /// Watch the arrays for changes (iSNS state change notifications, and a periodic refresh
    /// with --refresh-every) and print each notification as it arrives, until interrupted.
    Watch(Lazy<WatchArgs>),
    /// IVdsIscsiPortal::SetStatus(ONLINE).
    #[command(subcommand)]
    Online(Lazy<PortalVerb>),
    /// IVdsIscsiPortal::SetStatus(OFFLINE).
    #[command(subcommand)]
    Offline(Lazy<PortalVerb>),
    /// Create a target (CreateTarget) or a portal group (CreatePortalGroup).
    #[command(subcommand)]
    Create(Lazy<CreateArgs>),
    /// Delete a target (IVdsIscsiTarget::Delete) or a portal group (IVdsIscsiPortalGroup::Delete).
    #[command(subcommand)]
    Delete(Lazy<DeleteArgs>),
    /// Set or clear a target's alias (IVdsIscsiTarget::SetFriendlyName).
    #[command(subcommand)]
    Name(Lazy<NameArgs>),
    /// Add a portal to a portal group (IVdsIscsiPortalGroup::AddPortal).
    #[command(subcommand)]
    Add(Lazy<MemberVerb>),
    /// Remove a portal from a portal group (IVdsIscsiPortalGroup::RemovePortal).
    #[command(subcommand)]
    Remove(Lazy<MemberVerb>),
    /// Target CHAP: the secret initiators prove (SetSharedSecret) and the one the target proves
    /// itself with (RememberInitiatorSharedSecret).
    #[command(subcommand)]
    Chap(Lazy<ChapArgs>),
    /// Print a shell completion script on stdout.
    Completions(Lazy<CompletionsArgs>),
    /// Print the manual page (roff) on stdout, or write one page per command into a directory.
    Man(Lazy<ManArgs>),
}

/// A command's arguments, or its own subcommands, defined only when the parser enters it
/// ([`Command::defer`]): a run builds the parser of the one command it was given, not of every
/// command (about 0.4 M instructions of each short `vdsadm` run otherwise). Completions and the
/// manual pages, which walk the whole tree, get it from [`full_command`]. For the commands of
/// [`CommandArgs`] only: the commands under them get their deferral from [`with_common`].
#[derive(Debug)]
pub struct Lazy<T>(pub T);

thread_local! {
    /// Set by [`full_command`]: [`Lazy`] and [`with_common`] then define everything at once (per
    /// thread, so one test's whole definition does not make another test's parse eager).
    static EAGER: Cell<bool> = const { Cell::new(false) };
}

/// The whole definition, nothing deferred: what completions and manual pages are generated from
/// (clap's `help` subcommand mirrors only the commands defined when it is made).
pub fn full_command() -> Command {
    EAGER.with(|e| e.set(true));
    Cli::command()
}

/// Defers `augment` unless [`EAGER`]; the command's help text, set from the variant's doc comment
/// before the deferred definition runs, stays (the type's own doc comment would replace it).
fn lazily(cmd: Command, augment: fn(Command) -> Command) -> Command {
    if EAGER.with(Cell::get) {
        return augment(cmd);
    }
    cmd.defer(augment)
}

/// Runs `augment`, keeping the help text the command had.
fn keeping_about(cmd: Command, augment: impl FnOnce(Command) -> Command) -> Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let cmd = augment(cmd);
    let cmd = match about {
        Some(text) => cmd.about(text),
        None => cmd.about(None::<&str>),
    };
    match long_about {
        Some(text) => cmd.long_about(text),
        None => cmd.long_about(None::<&str>),
    }
}

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Lazy)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Lazy)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

impl<T: Subcommand> Subcommand for Lazy<T> {
    fn augment_subcommands(cmd: Command) -> Command {
        lazily(cmd, |c| {
            with_common(keeping_about(c, T::augment_subcommands))
        })
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        lazily(cmd, |c| {
            with_common(keeping_about(c, T::augment_subcommands_for_update))
        })
    }

    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

impl<T: Args> Args for Lazy<T> {
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }

    fn augment_args(cmd: Command) -> Command {
        lazily(cmd, |c| with_common(keeping_about(c, T::augment_args)))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        lazily(cmd, |c| {
            with_common(keeping_about(c, T::augment_args_for_update))
        })
    }
}

/// `vdsadm subsystem …`.
#[derive(Debug, Subcommand)]
pub enum SubsystemArgs {
    /// Register a subsystem, then reenumerate and refresh it (unless --no-refresh).
    Add(AddArgs),
    /// Change a subsystem's registration: the portals and credentials given replace those
    /// registered; then it is discovered again (unless --no-refresh).
    Set(SetArgs),
    /// Forget a subsystem: its configuration, its secrets and its cached picture.
    Remove {
        /// The subsystem's name.
        name: String,
    },
}

/// `vdsadm subsystem set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The subsystem's name.
    pub name: String,
    /// The new discovery portals, HOST[:PORT] (replace all registered ones). Repeat for several.
    #[arg(long = "portal", value_name = "HOST[:PORT]")]
    pub portals: Vec<String>,
    /// New credentials (each one given replaces the registered one).
    #[command(flatten)]
    pub credentials: CredentialArgs,
    /// Go back to the default initiator name.
    #[arg(long, conflicts_with = "initiator_name")]
    pub default_initiator_name: bool,
    /// Log in without CHAP from now on (mutual CHAP goes too).
    #[arg(long, conflicts_with_all = ["chap_user", "mutual_user"])]
    pub no_chap: bool,
    /// Log in without mutual CHAP from now on.
    #[arg(long, conflicts_with = "mutual_user")]
    pub no_mutual: bool,
    /// Only change the registration; do not contact the array now.
    #[arg(long)]
    pub no_refresh: bool,
}

/// `vdsadm provider …`.
#[derive(Debug, Subcommand)]
pub enum ProviderArgs {
    /// Add a provider of a kind; a kind that finds its own subsystems (sim) is reenumerated and
    /// refreshed at once (unless --no-refresh).
    Add(ProviderAddArgs),
    /// Remove a provider (its registered subsystems must be removed first).
    Remove {
        /// The provider's name.
        name: String,
    },
}

/// `vdsadm provider add`.
#[derive(Debug, Args)]
pub struct ProviderAddArgs {
    /// The provider's name (object ids derive from it).
    pub name: String,
    /// The provider kind: sendtargets, sim, tgt or isns.
    #[arg(long, value_name = "KIND")]
    pub kind: String,
    /// isns: the iSNS server, HOST[:PORT] (port 3205 by default; IPv6 in brackets).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub server: Option<String>,
    /// isns: our iSCSI name, the source of every request (and the Control node's name).
    #[arg(long, value_name = "IQN")]
    pub source_name: Option<String>,
    /// isns: register as a Control node, which sees every node whatever the discovery domains
    /// (the registration is renewed within the registration period the server grants).
    #[arg(long)]
    pub control_node: bool,
    /// isns: listen for state change notifications on IP:PORT (an address the server can reach;
    /// needs --control-node); `vdsadm watch` and vdsd turn them into refreshes.
    #[arg(long, value_name = "IP:PORT")]
    pub scn_listen: Option<String>,
    /// sendtargets: the most connections open at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
    /// sim: make the simulated array with this many subsystems (default: the demonstration array).
    #[arg(long, value_name = "N")]
    pub subsystems: Option<u32>,
    /// sim: this many portals in each simulated subsystem.
    #[arg(long, value_name = "N")]
    pub portals: Option<u32>,
    /// tgt: tgtd's management socket (default: $TGT_IPC_SOCKET.0, else /var/run/tgtd/socket.0,
    /// resolved now and kept in the configuration).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Only add it; do not contact anything now.
    #[arg(long)]
    pub no_refresh: bool,
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

/// `vdsadm refresh`.
#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// Refresh this subsystem alone (its refresh holds no other subsystem).
    #[arg(long, value_name = "NAME")]
    pub subsystem: Option<String>,
}

/// `vdsadm list …`.
#[derive(Debug, Subcommand)]
pub enum ListArgs {
    /// The providers (IVdsService::QueryProviders).
    Providers,
    /// The subsystems (IVdsHwProvider::QuerySubSystems of each provider, or of --provider).
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
    /// A subsystem: its properties, its registration (secrets only as "set") and its cache.
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

/// `vdsadm online tportal` / `vdsadm offline tportal`.
#[derive(Debug, Subcommand)]
pub enum PortalVerb {
    /// A target portal.
    Tportal {
        /// The subsystem.
        #[arg(long, value_name = "NAME")]
        subsystem: String,
        /// The portal's address, HOST:PORT (IPv6 in brackets).
        #[arg(value_name = "HOST:PORT")]
        portal: String,
    },
}

/// `vdsadm create …`.
#[derive(Debug, Subcommand)]
pub enum CreateArgs {
    /// A target (IVdsSubSystemIscsi::CreateTarget).
    Target {
        /// The subsystem.
        #[arg(long, value_name = "NAME")]
        subsystem: String,
        /// The target's iSCSI name; without it the provider makes one.
        #[arg(long, value_name = "IQN")]
        iscsi_name: Option<String>,
        /// The target's alias (its friendly name).
        #[arg(long, value_name = "ALIAS", default_value = "")]
        alias: String,
    },
    /// A portal group of a target (IVdsIscsiTarget::CreatePortalGroup); prints its tag.
    Tpgroup {
        /// The subsystem.
        #[arg(long, value_name = "NAME")]
        subsystem: String,
        /// The target's iSCSI name.
        #[arg(long, value_name = "IQN")]
        target: String,
    },
}

/// `vdsadm delete …`.
#[derive(Debug, Subcommand)]
pub enum DeleteArgs {
    /// A target and its portal groups (refused while it has LUNs).
    Target {
        /// The subsystem.
        #[arg(long, value_name = "NAME")]
        subsystem: String,
        /// The target's iSCSI name.
        #[arg(value_name = "IQN")]
        target: String,
    },
    /// An empty portal group.
    Tpgroup {
        /// The subsystem.
        #[arg(long, value_name = "NAME")]
        subsystem: String,
        /// The target's iSCSI name.
        #[arg(long, value_name = "IQN")]
        target: String,
        /// The group's tag.
        #[arg(value_name = "TAG")]
        tag: u16,
    },
}

/// `vdsadm name target`.
#[derive(Debug, Subcommand)]
pub enum NameArgs {
    /// A target's alias; without ALIAS it is cleared.
    Target {
        /// The subsystem.
        #[arg(long, value_name = "NAME")]
        subsystem: String,
        /// The target's iSCSI name.
        #[arg(value_name = "IQN")]
        target: String,
        /// The new alias.
        #[arg(value_name = "ALIAS")]
        alias: Option<String>,
    },
}

/// `vdsadm add tportal` / `vdsadm remove tportal`.
#[derive(Debug, Subcommand)]
pub enum MemberVerb {
    /// A target portal, to or from a portal group of a target.
    Tportal {
        /// The subsystem.
        #[arg(long, value_name = "NAME")]
        subsystem: String,
        /// The target's iSCSI name.
        #[arg(long, value_name = "IQN")]
        target: String,
        /// The portal group's tag.
        #[arg(long, value_name = "TAG")]
        tpgroup: u16,
        /// The portal's address, HOST:PORT (IPv6 in brackets).
        #[arg(value_name = "HOST:PORT")]
        portal: String,
    },
}

/// `vdsadm chap …`.
#[derive(Debug, Subcommand)]
pub enum ChapArgs {
    /// A target's CHAP secrets.
    #[command(subcommand)]
    Target(ChapTargetArgs),
}

/// `vdsadm chap target set|remember`.
#[derive(Debug, Subcommand)]
pub enum ChapTargetArgs {
    /// Set or clear the secret initiators must prove to log in (IVdsIscsiTarget::SetSharedSecret).
    Set(ChapSetArgs),
    /// Set or clear the secret the target proves itself with to an initiator that asks, for mutual
    /// CHAP (IVdsIscsiTarget::RememberInitiatorSharedSecret).
    Remember(ChapRememberArgs),
}

/// `vdsadm chap target set`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["secret_file", "clear"])))]
pub struct ChapSetArgs {
    /// The subsystem.
    #[arg(long, value_name = "NAME")]
    pub subsystem: String,
    /// The target's iSCSI name.
    #[arg(value_name = "IQN")]
    pub target: String,
    /// File holding the secret (one line). The secret is never given on the command line.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Clear the secret: logins need no CHAP from then on.
    #[arg(long)]
    pub clear: bool,
    /// The secret of this initiator alone (default: the target's secret for every initiator).
    #[arg(long, value_name = "IQN")]
    pub initiator: Option<String>,
}

/// `vdsadm chap target remember`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["secret_file", "clear"])))]
pub struct ChapRememberArgs {
    /// The subsystem.
    #[arg(long, value_name = "NAME")]
    pub subsystem: String,
    /// The target's iSCSI name.
    #[arg(value_name = "IQN")]
    pub target: String,
    /// The initiator whose secret it is.
    #[arg(long, value_name = "IQN")]
    pub initiator: String,
    /// File holding the initiator's secret (one line). Never given on the command line.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Forget the secret.
    #[arg(long)]
    pub clear: bool,
}

/// A command that takes nothing but the [`Common`] options.
#[derive(Debug, Args)]
pub struct NoArgs {}

/// `vdsadm completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `vdsadm man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write vdsadm.8 and one page per subcommand (vdsadm-list-tportals.8, …) here.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// `vdsadm watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Also refresh every subsystem this often (e.g. 5m, 30s): how changes that raise no
    /// notification (an iSNS portal added or removed) are seen. At least 1s.
    #[arg(long, value_name = "DURATION")]
    pub refresh_every: Option<String>,
    /// Stop after this many notifications.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
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

    #[test]
    fn the_whole_definition_is_consistent() {
        // Every command defined at once, each with its own copy of the common options.
        full_command().debug_assert();
    }

    /// Every command path's argument ids, `help` aside.
    fn arg_ids(cmd: &Command, path: &str, out: &mut Vec<(String, Vec<String>)>) {
        let mut ids: Vec<String> = cmd
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        ids.sort();
        out.push((path.to_string(), ids));
        for sc in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
            arg_ids(sc, &format!("{path} {}", sc.get_name()), out);
        }
    }

    #[test]
    fn the_deferred_definition_is_the_whole_one() {
        // Built as a run builds it, then every deferred part made (`build`): the same commands
        // with the same arguments as the whole definition, so no deferral replaced a command's
        // own, and every command has the common options.
        let mut lazy = Cli::command();
        lazy.build();
        let mut deferred = Vec::new();
        arg_ids(&lazy, "vdsadm", &mut deferred);
        let mut whole = full_command();
        whole.build();
        let mut eager = Vec::new();
        arg_ids(&whole, "vdsadm", &mut eager);
        assert_eq!(deferred, eager);
        assert!(deferred.len() > 40, "{} command paths", deferred.len());
        for (path, ids) in &deferred {
            for id in Common::IDS {
                assert!(ids.iter().any(|i| i == id), "{path} lacks --{id}: {ids:?}");
            }
        }
    }

    fn common(line: &str) -> Common {
        match parse_from(line.split_whitespace()) {
            Ok(cli) => cli.common,
            Err(e) => panic!("{line}: {}", e.render()),
        }
    }

    #[test]
    fn common_options_go_before_or_after_any_command_and_the_deepest_wins() {
        let tp = "list tportals --subsystem a";
        assert!(common(&format!("vdsadm --json {tp}")).json);
        assert!(common(&format!("vdsadm {tp} --json")).json);
        assert!(common("vdsadm list --json tportals --subsystem a").json);
        assert!(!common(&format!("vdsadm {tp}")).json);
        // Given twice, the one typed after the deeper command counts (as with clap's global
        // options); a deeper command's default does not undo what was typed before it.
        assert!(!common(&format!("vdsadm --json {tp} --json=false")).json);
        assert!(common(&format!("vdsadm --json=false {tp} --json")).json);
        let c = common("vdsadm --store /a list --store /b tportals --subsystem a");
        assert_eq!(c.store, Some(PathBuf::from("/b")));
        let c = common(&format!("vdsadm --store /a --provider p {tp} -v"));
        assert_eq!(c.store, Some(PathBuf::from("/a")));
        assert_eq!(c.provider.as_deref(), Some("p"));
        assert_eq!(c.verbose, 1);
        assert_eq!(common(&format!("vdsadm -vv {tp}")).verbose, 2);
        assert_eq!(common(&format!("vdsadm -vv {tp} -vvv")).verbose, 3);
        // Commands without arguments of their own and the deepest commands take them too.
        assert!(common("vdsadm reenumerate --sim").sim);
        assert!(common("vdsadm --sim reenumerate --json").json);
        let c = common("vdsadm chap target set --subsystem s iqn.2026-12.t:x --clear --json -v");
        assert!(c.json);
        assert_eq!(c.verbose, 1);
        assert!(common("vdsadm completions bash --json").json);
        assert_eq!(
            common("vdsadm man --provider q").provider.as_deref(),
            Some("q")
        );
    }

    #[test]
    fn a_common_option_given_badly_is_clap_s_usual_error() {
        for line in [
            "vdsadm list tportals --subsystem a --store",
            "vdsadm reenumerate --json=maybe",
            "vdsadm --verbose=3 reenumerate",
        ] {
            let Err(e) = parse_from(line.split_whitespace()) else {
                panic!("{line}: accepted");
            };
            assert_eq!(e.exit_code(), 2, "{line}: {}", e.render());
        }
    }
}
