//! The embedded sandbox (`src/sandbox/postman-sandbox.js`) is what its
//! generator makes from the postman-sandbox and uvm packages newman installs
//! (`postman/package-lock.json`): a bump of newman, or an edit of the file by
//! hand, fails here until the file is regenerated.

use std::path::Path;

#[test]
fn the_embedded_sandbox_is_the_one_newman_installs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("../../postman/node_modules/postman-sandbox").exists(),
        "postman/node_modules missing: `cargo xtask test` installs it (npm ci in postman/)"
    );
    let output = std::process::Command::new("node")
        .arg(root.join("src/sandbox/generate.js"))
        .arg("--check")
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
