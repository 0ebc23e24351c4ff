//! Reports (placeholder).
