//! `vdsadm discover HOST[:PORT]`: one SendTargets discovery; touches no store.

use super::{Ctx, Printed, print_doc};
use crate::args::{Credentials, PortalArg};
use crate::error::CliResult;
use crate::output;

/// `discover`.
pub fn run(ctx: &Ctx<'_>, portal: &PortalArg, creds: &Credentials) -> CliResult<Printed> {
    let rt = ctx.runtime(false)?;
    let found = if ctx.globals.sim {
        // The simulator answers as a SendTargets target on its array would.
        ctx.query_service()?
            .simulated_discovery(&portal.to_vds_address())?
    } else {
        rt.block_on(vds_service::discover(
            &portal.to_string(),
            creds.initiator_name.as_deref(),
            creds.chap.as_ref(),
            creds.mutual.as_ref(),
        ))?
    };
    let printed = print_doc(ctx.json(), &found, || {
        output::discovered_text(&portal.to_string(), &found)
    });
    // The process ends once this is printed: the runtime's shutdown (closing its descriptors)
    // and the answer's hundreds of allocations are left to the exit, which costs a whole
    // command nothing, where tearing them down cost about a tenth of its work after the
    // logout (docs/PERFORMANCE.md, fifth run).
    std::mem::forget(found);
    std::mem::forget(rt);
    printed
}
