//! `kubectl purchase-guard`: kubectl runs this binary for `kubectl purchase-guard ...` when it is
//! on the PATH (see `purchase_guard::plugin`).

fn main() -> std::process::ExitCode {
    purchase_guard::plugin::main()
}
