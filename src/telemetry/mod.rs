//! tollgate's own telemetry: the Prometheus registry every component registers its metrics in,
//! and the admin HTTP listener.

use std::sync::LazyLock;

static REGISTRY: LazyLock<prometheus::Registry> = LazyLock::new(prometheus::Registry::new);

/// The process-wide registry served on `/metrics`. Components register their typed metric structs
/// here once (in a `LazyLock`), so each module owns its metric definitions.
pub fn registry() -> &'static prometheus::Registry {
    &REGISTRY
}
