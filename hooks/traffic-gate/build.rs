//! Bundles every service's Postman collection and every stage's environment
//! from `postman/` into the hook binaries, with the phases' folders and the
//! scope names read from each service's `[package.metadata.service]`
//! (the service registry). Generates `$OUT_DIR/bundle.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("../..");
    let services_dir = root.join("services");
    let postman = root.join("postman");
    println!("cargo:rerun-if-changed={}", services_dir.display());
    println!("cargo:rerun-if-changed={}", postman.display());
    let mut services = String::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&services_dir)
        .expect("services/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.sort();
    for dir in dirs {
        let manifest = dir.join("Cargo.toml");
        println!("cargo:rerun-if-changed={}", manifest.display());
        let text = std::fs::read_to_string(&manifest).expect("readable Cargo.toml");
        let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        let package = &doc["package"];
        let name = package["name"].as_str().expect("package.name");
        let Some(service) = package.get("metadata").and_then(|m| m.get("service")) else {
            continue;
        };
        let Some(spec) = service.get("postman") else { continue };
        let collection = spec["collection"].as_str().expect("postman.collection");
        let file = postman.join(format!("{collection}.postman_collection.json"));
        assert!(
            file.exists(),
            "{}: postman.collection {collection:?}: {} is missing",
            manifest.display(),
            file.display()
        );
        let folders = |key: &str| {
            spec.get(key)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str())
                        .map(|f| format!("{f:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        // Lambda's default when the registry names none.
        let timeout = package
            .get("metadata")
            .and_then(|m| m.get("lambda"))
            .and_then(|l| l.get("deploy"))
            .and_then(|d| d.get("timeout"))
            .and_then(|t| t.as_integer())
            .unwrap_or(3);
        let scopes = service
            .get("scopes")
            .and_then(|s| s.as_table())
            .map(|t| t.keys().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let _ = writeln!(
            services,
            "    BundledService {{ function: {name:?}, collection_file: {:?}, collection: include_str!({:?}), before: &[{}], after: &[{}], scopes: &[{scopes}], timeout_seconds: {timeout} }},",
            file.file_name().unwrap().to_string_lossy(),
            abs(&file),
            folders("before_traffic"),
            folders("after_traffic"),
        );
    }
    let mut environments = String::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&postman)
        .expect("postman/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".postman_environment.json"))
        .collect();
    files.sort();
    for file in files {
        let stage = file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".postman_environment.json")
            .to_owned();
        let _ = writeln!(environments, "    ({stage:?}, include_str!({:?})),", abs(&file));
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("bundle.rs");
    let code = format!(
        "/// Every registered service's checks, from the registry and `postman/`.\npub static SERVICES: &[BundledService] = &[\n{services}];\n\n/// Every stage's environment: (stage, file contents).\npub static ENVIRONMENTS: &[(&str, &str)] = &[\n{environments}];\n"
    );
    std::fs::write(out, code).expect("write bundle.rs");
}

fn abs(path: &Path) -> String {
    path.canonicalize().expect("bundled file exists").display().to_string()
}
