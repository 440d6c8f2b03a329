//! Reads tauri.conf.json and the capabilities at build time (no Tauri CLI needed).
fn main() {
    tauri_build::build()
}
