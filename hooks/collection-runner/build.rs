//! Compiles the embedded postman-sandbox (`src/sandbox/postman-sandbox.js`,
//! 2.3 MB of JavaScript) to QuickJS bytecode at build time, with the QuickJS
//! the runner links (the same `rquickjs` version, pinned by `Cargo.lock`):
//! parsing the bundle is three quarters of booting the sandbox, and every run
//! (every traffic hook invocation) boots one.

use std::path::PathBuf;

fn main() {
    let source_path = "src/sandbox/postman-sandbox.js";
    println!("cargo::rerun-if-changed={source_path}");
    let source = std::fs::read_to_string(source_path).expect("src/sandbox/postman-sandbox.js is readable");
    let bytecode = compile(&source, "postman-sandbox.js").unwrap_or_else(|message| {
        panic!("compiling {source_path} to QuickJS bytecode: {message}");
    });
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("postman-sandbox.qjsbc");
    std::fs::write(&out, bytecode).expect("OUT_DIR is writable");
}

/// The bytecode of `source` compiled as a sloppy-mode global script (the
/// bundle assigns undeclared globals, as code written for a VM context does).
#[allow(
    unsafe_code,
    reason = "rquickjs compiles global scripts to bytecode only through QuickJS's C API"
)]
fn compile(source: &str, name: &str) -> Result<Vec<u8>, String> {
    use rquickjs::qjs;
    let runtime = rquickjs::Runtime::new().map_err(|e| e.to_string())?;
    let context = rquickjs::Context::full(&runtime).map_err(|e| e.to_string())?;
    context.with(|ctx| {
        let code = std::ffi::CString::new(source).map_err(|e| e.to_string())?;
        let file = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
        let raw = ctx.as_raw().as_ptr();
        // SAFETY: `raw` is the live context of this closure; the C strings
        // outlive the call; every value is freed once, and the buffer
        // JS_WriteObject allocates is copied and then freed with js_free.
        unsafe {
            let function = qjs::JS_Eval(
                raw,
                code.as_ptr(),
                source.len() as _,
                file.as_ptr(),
                (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32,
            );
            if qjs::JS_VALUE_GET_TAG(function) == qjs::JS_TAG_EXCEPTION {
                let thrown = ctx.catch();
                return Err(format!("{thrown:?}"));
            }
            let mut length: qjs::size_t = 0;
            let buffer = qjs::JS_WriteObject(raw, &mut length, function, qjs::JS_WRITE_OBJ_BYTECODE as i32);
            qjs::JS_FreeValue(raw, function);
            if buffer.is_null() {
                return Err(String::from("JS_WriteObject returned nothing"));
            }
            let bytes = std::slice::from_raw_parts(buffer, length as usize).to_vec();
            qjs::js_free(raw, buffer.cast());
            Ok(bytes)
        }
    })
}
