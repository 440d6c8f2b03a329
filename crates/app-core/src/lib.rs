//! What the desktop app's profiles share, below both: the supervisor's and the manager's
//! settings files are read, bounded, validated and written the same way, with one error
//! type. Nothing here knows a profile.

pub mod settings_file;
