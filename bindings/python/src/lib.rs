//! Grant's Python binding: `grant._native`, the compiled half of the
//! `grant` package. The engine and the ledger run in-process; every call
//! that decides or touches the store releases the GIL, and every object is
//! safe to share across threads. The Python half (python/grant) adds
//! `Denied`, `guard` and the record types.

mod convert;
mod engine;
mod errors;
mod ledger;

use pyo3::prelude::*;

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<engine::PyEngine>()?;
    module.add_class::<engine::PyDecision>()?;
    module.add_class::<ledger::PyLedger>()?;
    module.add_class::<ledger::PyGuard>()?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
