//! `--sim`: every command against the model's in-memory simulator (`SimBackend::demo()`), so the
//! tool can be tried, scripted and tested on a machine with no array and no store.
//!
//! The simulator's state lives in this process only: each run starts from the demonstration array,
//! reenumerated at start, and nothing is saved. `subsystem add`/`remove` change the simulated array
//! for the rest of the run (then reenumerate and refresh, as with a real store) and are forgotten
//! at exit; `discover` answers from the simulated array as a SendTargets target would (a portal the
//! simulator does not have refuses the connection). The store directory is never opened.

use vds_model::sim::{SimBackend, SimControl};
use vds_model::{
    Hresult, HwProvider, IscsiPortalStatus, PortalSnapshot, SubSystemSnapshot, SubSystemStatus,
    Win32Error,
};

use crate::args::{Command, Credentials, PortalArg};
use crate::error::{CliError, CliResult};
use crate::output::{
    AddReport, CacheView, DiscoveredAddress, DiscoveredTarget, OperationReport, RemoveReport,
};
use crate::view::{self, Loaded, subject};
use crate::{Printed, print_doc};

/// The simulator and the provider over it.
pub struct Sim {
    provider: HwProvider,
    control: SimControl,
}

impl Sim {
    /// The demonstration array, initialized and reenumerated.
    pub fn start() -> CliResult<Sim> {
        let backend = SimBackend::demo();
        let control = backend.control();
        let provider = HwProvider::new(backend);
        let sim_err = |hr| CliError::new(hr, "simulator", None);
        provider.initialize().map_err(sim_err)?;
        provider.reenumerate().map_err(sim_err)?;
        tracing::info!("simulator: demonstration array reenumerated (nothing is contacted)");
        Ok(Sim { provider, control })
    }

    fn loaded(&self) -> Loaded {
        Loaded::new(self.provider.clone(), &self.provider.export(), None)
    }

    fn cache(&self) -> CacheView {
        CacheView {
            health: view::health_label(self.provider.cache_health()),
            refreshed_at: None,
        }
    }

    /// Runs `command` (not `completions` or `man`, which `main` handles).
    pub fn run(&self, command: &Command, json: bool) -> CliResult<Printed> {
        let loaded = self.loaded();
        match command {
            Command::ListSubsystems => {
                let rows = view::list_subsystems(&loaded, &[])?;
                print_doc(json, &rows, crate::output::subsystems_table(&rows))
            }
            Command::ListTportals { subsystem } => {
                let rows = view::list_portals(&loaded, subsystem)?;
                print_doc(json, &rows, crate::output::portals_table(subsystem, &rows))
            }
            Command::ListTargets { subsystem } => {
                let rows = view::list_targets(&loaded, subsystem)?;
                print_doc(json, &rows, crate::output::targets_table(subsystem, &rows))
            }
            Command::ListTpgroups { subsystem, target } => {
                let rows = view::list_groups(&loaded, subsystem, target)?;
                print_doc(json, &rows, crate::output::groups_table(target, &rows))
            }
            Command::DetailSubsystem { name } => {
                let d = view::subsystem_detail(&loaded, name, None, self.cache())?;
                print_doc(json, &d, crate::output::subsystem_detail_text(&d))
            }
            Command::DetailTportal { subsystem, portal } => {
                let d = view::portal_detail(&loaded, subsystem, portal)?;
                print_doc(json, &d, crate::output::portal_detail_text(&d))
            }
            Command::DetailTarget { subsystem, target } => {
                let d = view::target_detail(&loaded, subsystem, target)?;
                print_doc(json, &d, crate::output::target_detail_text(&d))
            }
            Command::Refresh => self.operation(json, "refresh"),
            Command::Reenumerate => self.operation(json, "reenumerate"),
            Command::SubsystemAdd {
                name,
                portals,
                no_refresh,
                ..
            } => self.add(json, name, portals, *no_refresh),
            Command::SubsystemRemove { name } => self.remove(json, name),
            Command::Discover {
                portal,
                credentials,
            } => self.discover(json, portal, credentials),
            Command::Completions(_) | Command::Man => Err(CliError::with_cause(
                Hresult::E_UNEXPECTED,
                "",
                "not a simulator command",
            )),
        }
    }

    fn operation(&self, json: bool, op: &str) -> CliResult<Printed> {
        let result = if op == "refresh" {
            self.provider.refresh()
        } else {
            self.provider.reenumerate()
        };
        let batch = result.map_err(|hr| CliError::new(hr, "provider \"vds-sim\"", None))?;
        let report = OperationReport {
            operation: op.to_string(),
            cache_health: view::health_label(self.provider.cache_health()),
            notifications: batch.len(),
            corrupt_cache_kept_at: None,
            subsystems: view::refreshed(&self.provider.export()),
        };
        print_doc(json, &report, crate::output::operation_text(&report))
    }

    fn add(
        &self,
        json: bool,
        name: &str,
        portals: &[PortalArg],
        no_refresh: bool,
    ) -> CliResult<Printed> {
        let mut snap = SubSystemSnapshot::new(name, SubSystemStatus::Online);
        snap.identification = portals
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        snap.portals = portals
            .iter()
            .map(|p| PortalSnapshot {
                address: p.to_vds_address(),
                status: IscsiPortalStatus::Online,
            })
            .collect();
        let added = self.control.edit(|subs| {
            if subs.iter().any(|s| s.key == name) {
                false
            } else {
                subs.push(snap);
                true
            }
        });
        if !added {
            return Err(CliError::with_cause(
                Hresult::VDS_E_NAME_NOT_UNIQUE,
                subject(name),
                "a subsystem of that name already exists",
            ));
        }
        let mut subsystem = None;
        if !no_refresh {
            let err = |hr| CliError::new(hr, subject(name), None);
            self.provider.reenumerate().map_err(err)?;
            self.provider.refresh().map_err(err)?;
            subsystem = view::refreshed(&self.provider.export())
                .into_iter()
                .find(|s| s.name == name);
        }
        let report = AddReport {
            name: name.to_string(),
            portals: portals.iter().map(ToString::to_string).collect(),
            refreshed: !no_refresh,
            subsystem,
        };
        let text = format!(
            "Subsystem {name:?} registered in the simulator (not saved: --sim keeps nothing).\n{}",
            crate::output::refreshed_table(report.subsystem.as_slice())
        );
        print_doc(json, &report, text)
    }

    fn remove(&self, json: bool, name: &str) -> CliResult<Printed> {
        let present = self.control.edit(|subs| subs.iter().any(|s| s.key == name));
        if !present {
            return Err(CliError::new(
                Hresult::VDS_E_OBJECT_NOT_FOUND,
                subject(name),
                None,
            ));
        }
        self.control.remove_subsystem(name);
        self.provider
            .reenumerate()
            .map_err(|hr| CliError::new(hr, subject(name), None))?;
        let report = RemoveReport {
            name: name.to_string(),
            removed: true,
        };
        let text = format!("Subsystem {name:?} removed from the simulator (not saved).\n");
        print_doc(json, &report, text)
    }

    /// SendTargets as the simulated array would answer it: the targets with a portal group that
    /// holds the discovery portal, each with all its group addresses and tags.
    fn discover(&self, json: bool, portal: &PortalArg, _creds: &Credentials) -> CliResult<Printed> {
        let wanted = portal.to_vds_address();
        let subs = self.control.edit(|subs| subs.clone());
        let Some(sub) = subs
            .iter()
            .find(|s| s.portals.iter().any(|p| p.address == wanted))
        else {
            return Err(CliError::with_cause(
                Hresult::from_win32(Win32Error::WSAECONNREFUSED.0),
                format!("portal {portal}"),
                "cannot connect: connection refused (the simulator has no portal at this address)",
            ));
        };
        let mut found = Vec::new();
        for t in &sub.targets {
            if !t.portal_groups.iter().any(|g| g.portals.contains(&wanted)) {
                continue;
            }
            let mut addresses = Vec::new();
            for g in &t.portal_groups {
                for a in &g.portals {
                    addresses.push(DiscoveredAddress {
                        address: a.host(),
                        port: u16::try_from(a.port()).unwrap_or(0),
                        tag: Some(g.tag),
                    });
                }
            }
            found.push(DiscoveredTarget {
                name: t.iscsi_name.clone(),
                addresses,
            });
        }
        let text = crate::output::discovered_text(&portal.to_string(), &found);
        print_doc(json, &found, text)
    }
}
