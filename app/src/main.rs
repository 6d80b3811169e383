//! The dashboard's entry point: panics go to the console, the app mounts on `<body>`.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(medledger_app::App);
}
