//! Placeholder replaced by the envelope implementation.
