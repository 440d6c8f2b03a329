//! What the desktop app's profiles share, below both: the supervisor's and the manager's
//! settings files are read, bounded, validated and written the same way, with one error
//! type, each starts from its settings and its cache the same way, and their charts are
//! refused and fail with one error. Nothing here knows
//! a profile.

pub mod chart;
pub mod settings_file;
pub mod start;
