//! The change verbs, in DiskRAID's words: `online tportal`, `offline tportal`, `create target`,
//! `delete target`, `name target`, `create tpgroup`, `delete tpgroup`, `add tportal`, `remove
//! tportal`, `chap target set`, `chap target remember`. Each is one VDS method, made by the service on the subsystem's array; the answer is its
//! result code (success-with-information codes such as `VDS_S_ALREADY_EXISTS` included), the object
//! it made, and the notifications it raised (in JSON, and with `-v`).

use vds_service::Change;

use super::{Ctx, Printed, print_doc};
use crate::args::Sel;
use crate::error::CliResult;
use crate::output;

/// Any change verb.
pub fn run(ctx: &Ctx<'_>, sel: &Sel, change: &Change) -> CliResult<Printed> {
    let rt = ctx.runtime(false)?;
    let service = ctx.service(&rt, false, None)?;
    let report = rt.block_on(service.change(sel, change.clone()))?;
    print_doc(
        ctx.json(),
        &report,
        output::mutation_text(&report, ctx.globals.verbose > 0),
    )
}
