//! The `etcd-rescue` binary: a thin layer over [`etcd_rescue::cli::run`].

fn main() {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = etcd_rescue::cli::run(std::env::args_os(), &mut stdout.lock(), &mut stderr.lock());
    std::process::exit(code);
}
