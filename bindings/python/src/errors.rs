//! The exceptions the native module raises. They are defined in Python
//! (python/grant/_errors.py), where they can inherit from two bases
//! (`NotFound` is also a `LookupError`), and imported here on first use.

pyo3::import_exception!(grant._errors, PolicyError);
pyo3::import_exception!(grant._errors, LedgerError);
pyo3::import_exception!(grant._errors, LedgerClosed);
pyo3::import_exception!(grant._errors, NotFound);
pyo3::import_exception!(grant._errors, Conflict);
pyo3::import_exception!(grant._errors, Forbidden);
pyo3::import_exception!(grant._errors, InvalidInput);
pyo3::import_exception!(grant._errors, StoreUnavailable);
