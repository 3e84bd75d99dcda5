//! Generates the protobuf types from our own `.proto` files in `proto/`.
//! protox parses them in pure Rust, so no system `protoc` is needed.

use std::path::{Path, PathBuf};

fn protos(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    names.sort();
    Ok(names)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let include = Path::new("proto/etcd");
    let files = protos(include)?;
    println!("cargo:rerun-if-changed=proto");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [include])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
