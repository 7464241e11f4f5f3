//! The live price table, swappable at runtime.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::config::PricingConfig;
use super::metrics::metrics;
use super::price_table::{validate, PricingError, ValidatedTable};

/// The price table in force. Readers take a snapshot per span (lock-free); [`Pricer::reload`]
/// swaps in a new table atomically.
#[derive(Debug)]
pub struct Pricer {
    table: ArcSwap<ValidatedTable>,
}

impl Pricer {
    /// Validates `config` into the initial table.
    pub fn new(config: &PricingConfig) -> Result<Self, Vec<PricingError>> {
        Ok(Self {
            table: ArcSwap::from_pointee(validate(config)?),
        })
    }

    /// The table in force now.
    pub fn table(&self) -> Arc<ValidatedTable> {
        self.table.load_full()
    }

    /// A cheap snapshot for one span.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<ValidatedTable>> {
        self.table.load()
    }

    /// Validates `config` and, when valid, makes it the table in force for spans processed from
    /// now on. When invalid, the current table stays, the problems are logged and returned, and
    /// `tollgate_llm_pricing_reloads_total{result="error"}` rises.
    pub fn reload(&self, config: &PricingConfig) -> Result<(), Vec<PricingError>> {
        match validate(config) {
            Ok(t) => {
                self.table.store(Arc::new(t));
                metrics().pricing_reloads.with_label_values(&["ok"]).inc();
                tracing::info!(models = config.models.len(), "Price table reloaded.");
                Ok(())
            }
            Err(errors) => {
                metrics()
                    .pricing_reloads
                    .with_label_values(&["error"])
                    .inc();
                for error in &errors {
                    tracing::warn!(%error, "Price table reload refused; keeping the previous table.");
                }
                Err(errors)
            }
        }
    }
}
