//! Process wiring: builds every component from the config, runs them, drains on shutdown.
