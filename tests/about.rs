//! `completion`, `man` and `version`: generated from the clap definitions
//! and loaded by the real tools that use them (bash, man/groff).

mod common;

use std::process::Command;

use common::*;

/// What bash completes after `words` (the last one being completed), with
/// the script `etcd-rescue completion bash` printed, loaded into real bash.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let driver = r#"
source "$1"; shift
fn=$(complete -p etcd-rescue | sed -n 's/.*-F \([^ ]*\).*/\1/p')
[ -n "$fn" ] || { echo "no completion registered" >&2; exit 1; }
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
"$fn" etcd-rescue "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let o = Command::new("bash")
        .arg("-c")
        .arg(driver)
        .arg("driver")
        .arg(script)
        .args(words)
        .output()
        .expect("bash");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_loads_the_completion_and_completes_commands_and_options() {
    let r = run(&["completion", "bash"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("etcd-rescue.bash");
    std::fs::write(&script, &r.out).unwrap();
    assert_eq!(
        bash_completes(&script, &["etcd-rescue", "sta"]),
        ["status", "stats"]
    );
    let mut k8s_d = bash_completes(&script, &["etcd-rescue", "k8s", "d"]);
    k8s_d.sort();
    assert_eq!(k8s_d, ["diff", "dump"]);
    // A subcommand's own options (this did not work with clap_complete's
    // script as generated).
    assert_eq!(
        bash_completes(&script, &["etcd-rescue", "k8s", "dump", "x", "--for-a"]),
        ["--for-apply"]
    );
    assert!(
        bash_completes(&script, &["etcd-rescue", "status", "x", "-"]).contains(&"--verify-hash".to_string())
    );
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let r = run(&["completion", shell]);
        assert_eq!(r.code, 0, "{shell}");
        assert!(r.out.contains("for-apply"), "{shell}");
    }
    assert_eq!(run(&["completion", "tcsh"]).code, 2);
}

#[test]
fn man_pages_for_every_command_render_with_groff() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    let r = run(&["man", "--out", dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.err);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for want in [
        "etcd-rescue.1",
        "etcd-rescue-status.1",
        "etcd-rescue-k8s-dump.1",
        "etcd-rescue-k8s-diff.1",
        "etcd-rescue-completion.1",
    ] {
        assert!(pages.iter().any(|p| p == want), "{want}: {pages:?}");
    }
    // Macro and syntax problems fail; a long line that cannot be broken
    // nicely (`break`) is only how it looks in 80 columns.
    for p in &pages {
        let o = Command::new("groff")
            .args(["-man", "-Tutf8", "-wmac", "-Wbreak"])
            .arg(dir.join(p))
            .output()
            .expect("groff (man-db's renderer)");
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "{p}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!o.stdout.is_empty(), "{p}");
        let roff = std::fs::read_to_string(dir.join(p)).unwrap();
        assert!(roff.contains(".SH SYNOPSIS") && roff.contains(".SH NAME"), "{p}");
    }
    // Without --out: the main page on stdout.
    let main = run(&["man"]);
    assert!(
        main.out.starts_with(".ie") || main.out.starts_with(".TH"),
        "{}",
        &main.out[..40.min(main.out.len())]
    );
}

#[test]
fn version_names_the_build() {
    let r = run(&["version", "-o", "json"]);
    assert_eq!(r.code, 0);
    let v = r.json();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let commit = v["gitCommit"].as_str().unwrap();
    let hex = commit.trim_end_matches("-dirty");
    assert!(
        commit == "unknown" || (hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit}"
    );
    let date = v["buildDate"].as_str().unwrap();
    assert!(
        date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
        "{date}"
    );
    let t = run(&["version"]);
    assert!(
        t.out
            .starts_with(&format!("etcd-rescue {}\n", env!("CARGO_PKG_VERSION"))),
        "{}",
        t.out
    );
}
