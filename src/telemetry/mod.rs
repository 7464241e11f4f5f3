//! tollgate's own telemetry: the Prometheus registry every component registers its metrics in,
//! the LLM metrics, their cardinality guard and the last hour of spend. The read side that
//! serves them (admin listener, status page) is [`crate::admin`].

pub mod cardinality;
pub mod llm_metrics;
pub mod recent;

use std::sync::LazyLock;

static REGISTRY: LazyLock<prometheus::Registry> = LazyLock::new(prometheus::Registry::new);

/// The process-wide registry served on `/metrics`. Components register their typed metric structs
/// here once (in a `LazyLock`), so each module owns its metric definitions.
pub fn registry() -> &'static prometheus::Registry {
    &REGISTRY
}
