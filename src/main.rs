//! The `etcd-rescue` binary: a thin layer over [`etcd_rescue::cli::run`].

fn main() {
    let stdout = std::io::stdout();
    // stderr is not locked for the whole run: progress bars draw on it from
    // other threads, and a lock held here would make them wait forever.
    let mut stderr = std::io::stderr();
    let code = etcd_rescue::cli::run(std::env::args_os(), &mut stdout.lock(), &mut stderr);
    std::process::exit(code);
}
